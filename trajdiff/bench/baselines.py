"""d3rlpy baselines (BC, TD3+BC, IQL, CQL) inside ``trajdiff bench``, evaluated by trajdiff itself.

Training runs d3rlpy_train.py in the baselines' own interpreter (d3rlpy 2.8.1 pins gymnasium 1.0.0,
trajdiff pins 1.4.0); the TorchScript policies it saves every ``eval_every`` updates are evaluated
here with trajdiff's vectorised evaluation: the same simulator, evaluation streams of the seed and
number of episodes as trajdiff's own runs. progress.csv is written once every saved policy has been
evaluated; a run without it is started again and d3rlpy_train.py goes on from the checkpoint it saves with
each policy.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from trajdiff.bench.budgets import Budget
from trajdiff.errors import TrajdiffError
from trajdiff.evaluate import EvaluationPlan, evaluate
from trajdiff.files import write_csv
from trajdiff.provenance import provenance

BASELINES = ("bc", "td3+bc", "iql", "cql")
TRAIN_SCRIPT = Path(__file__).with_name("d3rlpy_train.py")


class ScriptedPolicy:
    """A deterministic TorchScript policy, observations (E, Do) -> actions (E, Da), behind trajdiff's ``act``
    as an agent of one member."""

    members = 1
    history_len = 1
    action_chunk = 1

    def __init__(self, path: Path) -> None:
        self.device = torch.device("cpu")
        self.module = torch.jit.load(str(path), map_location=self.device)

    @torch.no_grad()
    def act(self, history: torch.Tensor, mask: torch.Tensor, random: object = None,
            deterministic: bool = False) -> tuple[torch.Tensor, None]:
        """history (1, E, H, Do) -> actions (1, E, 1, Da) from the current (last) observation; no critic's values."""
        return self.module(history[0, :, -1])[None, :, None], None


def start_record() -> dict[str, object]:
    """What starts a baseline's training, for its record of starts (the report's provenance): trajdiff's code
    commit (d3rlpy_train.py is part of it), the CPU and the trajdiff command; no GPU (d3rlpy trains on the CPU)."""
    record = provenance()
    return {"code_commit": record["code_commit"], "cpu": record["cpu"], "gpu": None, "command": record["command"]}


def run_baseline(dataset: Path, method: str, seed: int, run_dir: Path, budget: Budget, env_id: str,
                 python: Path) -> None:
    """Train ``method`` with d3rlpy and write run_dir/progress.csv; skip a run that already has one."""
    if (run_dir / "progress.csv").is_file():
        return
    if not python.is_file():
        raise TrajdiffError(f"baseline {method} needs d3rlpy in its own virtualenv: run `make baselines-env` "
                            f"(or pass --baselines-python; {python} does not exist)")
    save_every = budget.eval_every or budget.updates
    command = [str(python), str(TRAIN_SCRIPT), str(dataset), "--algorithm", method, "--updates",
               str(budget.updates), "--save-every", str(save_every), "--seed", str(seed), "--out", str(run_dir),
               "--start", json.dumps(start_record())]
    print(f"train {method} ({dataset.name}, seed {seed}) with d3rlpy: {shlex.join(command)}", file=sys.stderr)
    started = time.time()
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if completed.returncode != 0:
        (run_dir / "d3rlpy.log").parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "d3rlpy.log").write_text(completed.stdout)
        raise TrajdiffError(f"d3rlpy training of {method} failed (exit {completed.returncode}); "
                            f"its output is in {run_dir / 'd3rlpy.log'}")
    train_s = json.loads((run_dir / "d3rlpy.json").read_text())["train_s"]
    rows = []
    for step in range(save_every, budget.updates + 1, save_every):
        policy = ScriptedPolicy(run_dir / f"policy-{step}.pt")
        summary = evaluate(policy, env_id, EvaluationPlan(budget.eval_episodes, [seed]))[0].summary()
        rows.append({"step": step, "return_mean": summary["return_mean"], "return_std": summary["return_std"],
                     "normalized_score": summary["normalized_score_mean"]})
        print(f"{method} step {step}: return {summary['return_mean']:.1f}, "
              f"normalised {summary['normalized_score_mean']:.1f}", file=sys.stderr)
    rows[-1].update(wall_s=round(time.time() - started, 1), train_s=round(train_s, 1))

    write_csv(run_dir / "progress.csv", rows, list(rows[-1]))
