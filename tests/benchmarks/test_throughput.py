"""The throughput benchmark runs end to end and reports every figure it promises (values: docs/performance.md)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


def test_throughput_reports_updates_memory_and_matmul_floor():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--devices", "cpu", "--seconds", "0.2", "--transitions", "3000",
         "--batch-size", "32", "--members", "1", "2", "--matmul-floor", "--q-actions", "sampled", "approximated"],
        capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    rows = {(row["history_len"], row["n_step"], row["q_action"], row["members"]): row for row in summary["results"]}
    assert set(rows) == {(h, n, q, k) for h, n in ((1, 1), (8, 5)) for q in ("sampled", "approximated")
                         for k in (1, 2)}
    assert summary["bare_matmul_gflop_per_s"] > 0
    for (_, _, _, members), row in rows.items():
        assert row["updates_per_s"] > 0 and row["peak_memory_mib"] > 0 and 0 < row["floor_fraction"]
        assert abs(row["member_updates_per_s"] - members * row["updates_per_s"]) <= 0.1 * members  # rounding
        assert row["matmul_floor_ms"] > 0
    for q_action in ("sampled", "approximated"):  # K members do K times one member's products
        one, two = (rows[1, 1, q_action, k]["matmul_gflop_per_update"] for k in (1, 2))
        assert abs(two - 2 * one) <= 0.002  # both rounded to 3 decimals
    # the GRU over 8 states adds matrix products to the same networks' update; one step instead of the
    # reverse chain removes five denoiser passes and their backward
    assert rows[8, 5, "sampled", 1]["matmul_gflop_per_update"] > rows[1, 1, "sampled", 1]["matmul_gflop_per_update"]
    assert rows[1, 1, "approximated", 1]["matmul_gflop_per_update"] < \
        rows[1, 1, "sampled", 1]["matmul_gflop_per_update"]


def test_throughput_compares_the_critic_targets_at_the_same_n():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--devices", "cpu", "--seconds", "0.2", "--transitions", "3000",
         "--batch-size", "32", "--members", "2", "--matmul-floor", "--histories", "1", "4",
         "--targets", "nstep", "lambda", "chunk"], capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    rows = {(row["history_len"], row["target"]): row for row in summary["results"]}
    assert set(rows) == {(1, "nstep"), (4, "nstep"), (4, "lambda"), (4, "chunk")}  # n-step 1 has no other target
    flops = {key: row["matmul_gflop_per_update"] for key, row in rows.items()}
    # the lambda target samples and values 4 next states instead of one (the target's reverse chain and critic pass
    # are about a third of an update's products); a chunk of 4 only widens the networks' action input and output
    assert flops[4, "lambda"] > 1.4 * flops[4, "nstep"]
    assert flops[4, "nstep"] < flops[4, "chunk"] < 1.5 * flops[4, "nstep"]
