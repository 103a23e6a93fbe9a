"""Peak memory of a K-member `trajdiff train` on a dataset of D4RL's medium-expert size, and the sampler's share.

Usage: python benchmarks/memory.py [--dataset FILE | --transitions 2000000] [--members 5] [--updates 200]
Without --dataset the data are synthetic, in hopper's sizes (11 / 3) with episodes of 1..1000 steps: memory and
the sampler's cost depend on the sizes, not on what the numbers mean. The training runs in a child process
(`trajdiff train --seeds 0..K-1`, evaluation off), whose peak resident memory the kernel reports; the sampler's
share is the time of drawing a K-member batch against the time of a whole update, both in this process.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware  # noqa: E402
from sampler import synthetic_dataset  # noqa: E402

from trajdiff.data import TrajectorySampler, load_dataset, write_d4rl_hdf5  # noqa: E402


def training_peak_mib(dataset: Path, members: int, updates: int, history_len: int, n_step: int) -> float:
    """Peak resident memory (MiB) of a child process that trains ``members`` seeds as one batch."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "trajdiff.cli", "train", "--dataset", str(dataset), "--env",
                        "Hopper-v5", "--seeds", *map(str, range(members)), "--updates", str(updates),
                        "--eval-every", "0", "--checkpoint-every", str(updates), "--history-len", str(history_len),
                        "--n-step", str(n_step), "--device", "cpu", "--no-tensorboard", "--out",
                        str(Path(folder) / "run")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far, KiB on Linux


def sampler_share(dataset: Path, members: int, history_len: int, n_step: int, draws: int) -> tuple[float, float]:
    """Milliseconds per K-member batch drawn by the sampler, and per whole update of the agent."""
    from trajdiff.agent import AgentConfig
    from trajdiff.engine import UpdateEngine
    from trajdiff.run_folder import agent_for_environment

    data = load_dataset(dataset)
    configs = [AgentConfig(history_len=history_len, n_step=n_step)] * members
    sampler = TrajectorySampler(data, configs, list(range(members)), device="cpu")
    start = time.perf_counter()
    for _ in range(draws):
        sampler.draw(256)
    draw_ms = 1000 * (time.perf_counter() - start) / draws
    agent = agent_for_environment(configs, list(range(members)), 10**6, "Hopper-v5", torch.device("cpu"), data)
    engine = UpdateEngine(agent, sampler, 256, None)
    for _ in range(3):
        engine.update()
    start = time.perf_counter()
    for _ in range(draws // 10):
        engine.update()
    update_ms = 1000 * (time.perf_counter() - start) / (draws // 10)
    return draw_ms, update_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None, help="an hdf5 file (default: synthetic data)")
    parser.add_argument("--transitions", type=int, default=2_000_000, help="size of the synthetic data")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--history-len", type=int, default=4)
    parser.add_argument("--n-step", type=int, default=3)
    parser.add_argument("--draws", type=int, default=200, help="batches timed for the sampler's share")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        dataset = args.dataset
        if dataset is None:
            dataset = Path(folder) / "synthetic.hdf5"
            write_d4rl_hdf5(dataset, synthetic_dataset(args.transitions))
        transitions = load_dataset(dataset).num_transitions
        peak = training_peak_mib(dataset, args.members, args.updates, args.history_len, args.n_step)
        draw_ms, update_ms = sampler_share(dataset, args.members, args.history_len, args.n_step, args.draws)
    source = str(args.dataset) if args.dataset else "synthetic (hopper sizes)"
    print(f"trajdiff train, {args.members} members, history {args.history_len}, n-step {args.n_step}, batch 256")
    print(f"{'dataset':>26} {'transitions':>12} {'peak RSS MiB':>13} {'draw ms':>8} {'update ms':>10} {'share':>6}")
    share = draw_ms / update_ms
    print(f"{source:>26} {transitions:>12,} {peak:>13,.0f} {draw_ms:>8.2f} {update_ms:>10.1f} {share:>6.1%}")
    print(json.dumps({"benchmark": "memory", "dataset": source, "transitions": transitions, "members": args.members,
                      "history_len": args.history_len, "n_step": args.n_step, "updates": args.updates,
                      "peak_rss_mib": round(peak, 1), "sampler_draw_ms": round(draw_ms, 3),
                      "update_ms": round(update_ms, 2), "sampler_share": round(share, 4), "hardware": hardware()}))


if __name__ == "__main__":
    main()
