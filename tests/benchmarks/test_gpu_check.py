"""The GPU check: one line and exit 0 without CUDA; every part end to end on the CPU at toy sizes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_without_cuda_it_says_so_in_one_line():
    completed = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True)
    assert completed.stdout.strip().splitlines() == ["gpu_check: no CUDA device is visible to this PyTorch; "
                                                     "nothing to check"]


def test_every_part_runs_on_the_cpu(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path)],
                               capture_output=True, text=True, check=True)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    parts = summary["parts"]
    assert summary["pass"] and summary["device"] == "cpu"
    assert parts["a_graph_against_eager"]["status"] == "skipped"
    assert parts["b_throughput"]["status"] == parts["c_round_trip"]["status"] == "pass"
    rows = parts["b_throughput"]["result"]
    assert {(row["history_len"], row["n_step"], row["members"]) for row in rows} == {
        (1, 1, 1), (1, 1, 2), (8, 5, 1), (8, 5, 2)}
    assert all(row["updates_per_s"] > 0 for row in rows)
    assert parts["c_round_trip"]["result"]["progress_rows"] == 3
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
