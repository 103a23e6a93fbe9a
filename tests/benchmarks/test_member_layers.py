"""The member-layers benchmark measures both mechanisms for each K (values: docs/performance.md), and its JSON line
says what ran it, as every benchmark's does (benchmarks/_common.hardware)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "member_layers.py"


def test_member_layers_compares_both_mechanisms():
    completed = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "0.1", "--members", "1", "2"],
                               capture_output=True, text=True, check=True)
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    rows = report["results"]
    assert {(row["members"], row["mechanism"]) for row in rows} == {(1, "baddbmm"), (1, "vmap"), (2, "baddbmm"),
                                                                   (2, "vmap")}
    assert all(row["member_calls_per_s"] > 0 for row in rows)
    ran = report["hardware"]
    assert re.fullmatch(r"[0-9a-f]{40}(\+changes)?|unknown", ran["code_commit"])
    assert ran["command"].endswith("member_layers.py --seconds 0.1 --members 1 2") and ran["cpu"]
    assert ran["versions"]["torch"] == torch.__version__ and ran["cpu_count"] >= 1
