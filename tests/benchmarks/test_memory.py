"""The memory benchmark trains K members in a child process and reports its peak memory and the sampler's share."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "memory.py"


@pytest.mark.slow
def test_memory_benchmark_reports_peak_memory_and_the_sampler_share():
    completed = subprocess.run([sys.executable, str(SCRIPT), "--transitions", "5000", "--members", "2", "--updates",
                                "4", "--draws", "10", "--history-len", "2", "--n-step", "2"],
                               capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["transitions"] == 5000 and summary["members"] == 2
    assert summary["peak_rss_mib"] > 100  # a process that imported torch and trained
    assert 0 < summary["sampler_share"] < 1 and summary["update_ms"] > summary["sampler_draw_ms"] > 0
