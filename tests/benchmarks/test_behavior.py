"""The behaviour-trainer benchmark times both SAC trainers and ends with one JSON line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "behavior.py"


@pytest.mark.slow
def test_behavior_benchmark_times_both_trainers():
    completed = subprocess.run([sys.executable, str(SCRIPT), "--steps", "20", "--warmup", "5",
                                "--learning-starts", "50", "--rounds", "2"], capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert [row["trainer"] for row in summary["results"]] == ["sb3", "sbx"]
    assert all(len(row["steps_per_s"]) == 2 and row["median"] > 0 for row in summary["results"])
    assert summary["sbx_over_sb3"] > 0
