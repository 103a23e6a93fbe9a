"""Rollout steps per second of dataset collection: random actions and a SAC checkpoint, by env count.

Usage: python benchmarks/collect.py [--from RUN_DIR] [--steps 20000]
Without --from only the random policy is measured. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware  # noqa: E402

from trajdiff.collect.datasets import BehaviorRun, rollouts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="run", type=Path, default=None, help="behaviour run folder")
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    policies = {"random": None}
    if args.run is not None:
        from stable_baselines3 import SAC

        from trajdiff.collect.behavior import checkpoint_path

        run = BehaviorRun.open(args.run)
        policies["sac-expert"] = SAC.load(checkpoint_path(run.directory, int(run.expert["step"])), device="cpu")
    rows = []
    print(f"collection steps/s, {args.env}, {args.steps:,} steps per measurement")
    print(f"{'policy':>12} {'envs':>5} {'steps/s':>10}")
    for name, policy in policies.items():
        for num_envs in (1, 4, 8, 16):
            start = time.perf_counter()
            arrays, _ = rollouts(args.env, policy, args.steps, seed=0, num_envs=num_envs, label=name)
            rate = len(arrays["rewards"]) / (time.perf_counter() - start)
            rows.append({"policy": name, "num_envs": num_envs, "steps_per_s": round(rate)})
            print(f"{name:>12} {num_envs:>5} {rate:>10,.0f}")
    print(json.dumps({"benchmark": "collect", "env": args.env, "hardware": hardware(), "results": rows}))


if __name__ == "__main__":
    main()
