"""The member-layers benchmark measures both mechanisms for each K (values: docs/performance.md)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "member_layers.py"


def test_member_layers_compares_both_mechanisms():
    completed = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "0.1", "--members", "1", "2"],
                               capture_output=True, text=True, check=True)
    rows = json.loads(completed.stdout.strip().splitlines()[-1])["results"]
    assert {(row["members"], row["mechanism"]) for row in rows} == {(1, "baddbmm"), (1, "vmap"), (2, "baddbmm"),
                                                                   (2, "vmap")}
    assert all(row["member_calls_per_s"] > 0 for row in rows)
