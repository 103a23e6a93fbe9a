"""SAC training steps per second of the two behaviour-run trainers (sb3: PyTorch, sbx: JAX), side by side.

Usage: python benchmarks/behavior.py [--env Hopper-v5] [--steps 3000] [--rounds 3]
Each round trains each trainer once (alternating, so a machine that speeds up or slows down during the
run affects both alike), with stable-baselines3's defaults, single-threaded, as `trajdiff collect
train-behavior --trainer ...` runs them. The rate counts learning steps only: it starts after
``--warmup`` of them (JAX compiles its update on the first). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware  # noqa: E402

from trajdiff.collect.behavior import sac_class  # noqa: E402
from trajdiff.envs import make_environment  # noqa: E402


def steps_per_second(trainer: str, env_id: str, learning_starts: int, warmup: int, steps: int) -> float:
    """Learning steps per second of one fresh SAC run, after ``warmup`` learning steps."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    first, last = learning_starts + warmup, learning_starts + warmup + steps
    times: dict[int, float] = {}

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps in (first, last):
                times[self.num_timesteps] = time.perf_counter()
            return True

    model = sac_class(trainer)("MlpPolicy", make_environment(env_id), learning_starts=learning_starts, seed=0,
                               verbose=0, **({"device": "cpu"} if trainer == "sb3" else {}))
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=last, callback=Clock())
    return steps / (times[last] - times[first])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=3000, help="learning steps timed per measurement")
    parser.add_argument("--warmup", type=int, default=500, help="learning steps before the clock starts")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trainers", nargs="+", default=["sb3", "sbx"], choices=["sb3", "sbx"])
    args = parser.parse_args()
    rates: dict[str, list[float]] = {trainer: [] for trainer in args.trainers}
    print(f"SAC learning steps/s, {args.env}, {args.steps:,} steps per measurement, {args.rounds} rounds")
    print(f"{'round':>5} " + " ".join(f"{trainer:>8}" for trainer in args.trainers))
    for round_index in range(args.rounds):
        for trainer in args.trainers:
            rates[trainer].append(steps_per_second(trainer, args.env, args.learning_starts, args.warmup, args.steps))
        print(f"{round_index:>5} " + " ".join(f"{rates[trainer][-1]:>8.1f}" for trainer in args.trainers))
    medians = {trainer: statistics.median(values) for trainer, values in rates.items()}
    print("median " + " ".join(f"{medians[trainer]:>8.1f}" for trainer in args.trainers))
    results = [{"trainer": trainer, "steps_per_s": [round(value, 1) for value in rates[trainer]],
                "median": round(medians[trainer], 1)} for trainer in args.trainers]
    summary = {"benchmark": "behavior", "env": args.env, "steps": args.steps, "hardware": hardware(),
               "results": results}
    if {"sb3", "sbx"} <= medians.keys():
        summary["sbx_over_sb3"] = round(medians["sbx"] / medians["sb3"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
