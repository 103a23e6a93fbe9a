"""The throughput benchmark runs end to end and reports every figure it promises (values: README)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"


def test_throughput_reports_updates_memory_and_matmul_floor():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--devices", "cpu", "--seconds", "0.2", "--transitions", "3000",
         "--batch-size", "32", "--matmul-floor"],
        capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    rows = {(row["history_len"], row["n_step"]): row for row in summary["results"]}
    assert set(rows) == {(1, 1), (8, 5)}
    assert summary["bare_matmul_gflop_per_s"] > 0
    for row in rows.values():
        assert row["updates_per_s"] > 0 and row["peak_memory_mib"] > 0 and row["matmul_floor_ms"] > 0
    # the GRU over 8 states adds matrix products to the same networks' update
    assert rows[8, 5]["matmul_gflop_per_update"] > rows[1, 1]["matmul_gflop_per_update"]
