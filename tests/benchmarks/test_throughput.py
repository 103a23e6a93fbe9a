"""The throughput benchmark runs end to end and reports every figure it promises (values: README)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


def test_throughput_reports_updates_memory_and_matmul_floor():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--devices", "cpu", "--seconds", "0.2", "--transitions", "3000",
         "--batch-size", "32", "--members", "1", "2", "--matmul-floor"],
        capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    rows = {(row["history_len"], row["n_step"], row["members"]): row for row in summary["results"]}
    assert set(rows) == {(1, 1, 1), (8, 5, 1), (1, 1, 2), (8, 5, 2)}
    assert summary["bare_matmul_gflop_per_s"] > 0
    for (_, _, members), row in rows.items():
        assert row["updates_per_s"] > 0 and row["peak_memory_mib"] > 0
        assert abs(row["member_updates_per_s"] - members * row["updates_per_s"]) <= 0.1 * members  # rounding
    for key in ((1, 1), (8, 5)):
        assert rows[(*key, 1)]["matmul_floor_ms"] > 0
    rows = {key[:2]: row for key, row in rows.items() if key[2] == 1}
    # the GRU over 8 states adds matrix products to the same networks' update
    assert rows[8, 5]["matmul_gflop_per_update"] > rows[1, 1]["matmul_gflop_per_update"]
