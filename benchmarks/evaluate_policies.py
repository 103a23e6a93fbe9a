"""Evaluate exported TorchScript policies (e.g. d3rlpy baselines) with trajdiff's own evaluation.

Every method then faces the same pinned simulator, seeds and episode count as trajdiff's runs.
Usage: python benchmarks/evaluate_policies.py POLICY.pt [...] --env Hopper-v5 --episodes 10
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from trajdiff.evaluate import evaluate


class ScriptedPolicy:
    """A deterministic TorchScript policy observations (E, Do) -> actions (E, Da), as trajdiff's ``act``."""

    def __init__(self, path: Path) -> None:
        self.device = torch.device("cpu")
        self.module = torch.jit.load(str(path), map_location=self.device)

    @torch.no_grad()
    def act(self, history: torch.Tensor, mask: torch.Tensor, generator=None, deterministic=False):  # noqa: ANN001
        return self.module(history[:, -1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policies", nargs="+", type=Path)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=10_000, help="trajdiff train evaluates with seed + 10000")
    args = parser.parse_args()
    rows = []
    print(f"{'policy':>28} {'return':>16} {'normalised':>11}")
    for path in args.policies:
        summary = evaluate(ScriptedPolicy(path), args.env, 1, args.episodes, args.seed).summary()
        rows.append({"policy": str(path), **{k: summary[k] for k in
                                             ("return_mean", "return_std", "normalized_score_mean", "episodes")}})
        print(f"{path.name:>28} {summary['return_mean']:>8.1f} ± {summary['return_std']:<6.1f} "
              f"{summary['normalized_score_mean']:>11.1f}")
    print(json.dumps({"benchmark": "evaluate_policies", "env": args.env, "results": rows}))


if __name__ == "__main__":
    main()
