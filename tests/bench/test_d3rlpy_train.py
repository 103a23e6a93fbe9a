"""d3rlpy_train.py for real, in the baselines' own virtualenv (`make baselines-env`, which `make test` builds)."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

from trajdiff.bench.baselines import TRAIN_SCRIPT

BASELINES_PYTHON = Path(__file__).parents[2] / ".venv-baselines" / "bin" / "python"
pytestmark = pytest.mark.skipif(not BASELINES_PYTHON.is_file(), reason="no .venv-baselines: run make baselines-env")


def train(dataset: Path, algorithm: str, out: Path, *extra: str) -> None:
    command = [str(BASELINES_PYTHON), str(TRAIN_SCRIPT), str(dataset), "--algorithm", algorithm, "--updates", "40",
               "--save-every", "10", "--seed", "3", "--out", str(out), *extra]
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("algorithm", ["iql", "td3+bc"])  # a decaying learning rate; an actor every 2nd update
def test_a_run_stopped_and_started_again_makes_the_policies_of_a_straight_run(hopper_file, tmp_path, algorithm):
    """The same policies at every save; d3rlpy.json lists each start with the update it began at."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(hopper_file, algorithm, straight)
    train(hopper_file, algorithm, split, "--stop-at", "10", "--start", '{"command": "first"}')
    assert sorted(path.name for path in split.glob("policy-*.pt")) == ["policy-10.pt"]
    assert not (split / "d3rlpy.json").exists()  # unfinished
    train(hopper_file, algorithm, split, "--stop-at", "30", "--start", '{"command": "second"}')
    train(hopper_file, algorithm, split, "--start", '{"command": "third"}')
    assert json.loads((split / "d3rlpy.json").read_text())["starts"] == [
        {"at_update": 0, "command": "first"}, {"at_update": 10, "command": "second"},
        {"at_update": 30, "command": "third"}]
    observations = torch.randn(8, 11, generator=torch.Generator().manual_seed(0))
    for step in (10, 20, 30, 40):
        ours, theirs = (torch.jit.load(str(folder / f"policy-{step}.pt"))(observations) for folder in (split, straight))
        assert torch.equal(ours, theirs), step
    first = torch.jit.load(str(straight / "policy-10.pt"))(observations)
    assert not torch.equal(first, torch.jit.load(str(straight / "policy-40.pt"))(observations))  # it trained


def test_a_checkpoint_of_another_run_is_refused(hopper_file, tmp_path):
    train(hopper_file, "iql", tmp_path, "--stop-at", "10")
    command = [str(BASELINES_PYTHON), str(TRAIN_SCRIPT), str(hopper_file), "--algorithm", "td3+bc", "--updates", "40",
               "--save-every", "10", "--seed", "3", "--out", str(tmp_path)]
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 1 and "was written by another run" in completed.stderr
    assert "Traceback" not in completed.stderr
