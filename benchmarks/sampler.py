"""Windows per second and resident memory of TrajectorySampler on a synthetic 1M-step dataset.

Usage: python benchmarks/sampler.py [--device cpu|cuda] [--transitions 1000000]
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware, resident_memory_mb  # noqa: E402

from trajdiff.agent import AgentConfig  # noqa: E402
from trajdiff.data import EpisodeDataset, TrajectorySampler  # noqa: E402


def synthetic_dataset(transitions: int, seed: int = 0) -> EpisodeDataset:
    """Hopper-sized arrays (11 / 3) with episodes of 1..1000 steps, half ending on a terminal."""
    rng = np.random.default_rng(seed)
    terminals = np.zeros(transitions, bool)
    timeouts = np.zeros(transitions, bool)
    position = 0
    while position < transitions:
        position = min(position + int(rng.integers(1, 1001)), transitions)
        (terminals if rng.random() < 0.5 else timeouts)[position - 1] = True
    return EpisodeDataset.from_arrays({
        "observations": rng.standard_normal((transitions, 11), dtype=np.float32),
        "next_observations": rng.standard_normal((transitions, 11), dtype=np.float32),
        "actions": rng.uniform(-1, 1, (transitions, 3)).astype(np.float32),
        "rewards": rng.standard_normal(transitions, dtype=np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
    }, name="synthetic")


def windows_per_second(sampler: TrajectorySampler, batch_size: int, seconds: float) -> float:
    for _ in range(20):
        sampler.draw(batch_size)
    batches, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            sampler.draw(batch_size)
        batches += 100
    if sampler.device.type == "cuda":
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    return batches * batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per configuration")
    args = parser.parse_args()

    dataset = synthetic_dataset(args.transitions)
    baseline_mb = resident_memory_mb()
    rows = []
    print(f"TrajectorySampler, {args.transitions:,} transitions, batch {args.batch_size}, {args.device}")
    print(f"{'history_len':>11} {'n_step':>6} {'windows/s':>12} {'sampler MiB':>12} {'build s':>8}")
    for history_len in (1, 8, 32):
        for n_step in (1, 5, 10):
            start = time.perf_counter()
            sampler = TrajectorySampler(dataset, [AgentConfig(history_len=history_len, n_step=n_step)], [0],
                                        device=args.device)
            build_seconds = time.perf_counter() - start
            memory = resident_memory_mb() - baseline_mb
            rate = windows_per_second(sampler, args.batch_size, args.seconds)
            rows.append({"history_len": history_len, "n_step": n_step, "windows_per_s": round(rate),
                         "sampler_mib": round(memory, 1), "build_s": round(build_seconds, 3)})
            print(f"{history_len:>11} {n_step:>6} {rate:>12,.0f} {memory:>12.1f} {build_seconds:>8.2f}")
            del sampler
    print(json.dumps({"benchmark": "sampler", "device": args.device, "transitions": args.transitions,
                      "batch_size": args.batch_size, "dataset_mib": round(baseline_mb, 1),
                      "hardware": hardware(), "results": rows}))


if __name__ == "__main__":
    main()
