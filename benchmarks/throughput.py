"""Agent updates per second and peak memory at batch 256, on CPU and (when present) CUDA.

Usage: python benchmarks/throughput.py [--devices cpu cuda] [--seconds 10]
Configurations: (history_len 1, n_step 1) = Diffusion-QL, and (history_len 8, n_step 5).
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware  # noqa: E402
from sampler import synthetic_dataset  # noqa: E402

from trajdiff.agent import AgentConfig, DiffusionQLAgent  # noqa: E402
from trajdiff.data import TrajectorySampler  # noqa: E402


def measure(dataset, device: torch.device, history_len: int, n_step: int, batch_size: int,  # noqa: ANN001
            seconds: float) -> dict[str, float]:
    sampler = TrajectorySampler(dataset, history_len, n_step, 0.99, device=device)
    agent = DiffusionQLAgent(dataset.observation_dim, dataset.action_dim, 1.0, history_len, AgentConfig(),
                             10**6, device)
    for _ in range(20):  # warm-up: allocator, kernels, the EMA phase does not change the cost
        agent.update(sampler.sample(batch_size))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            agent.update(sampler.sample(batch_size))
        updates += 10
        if device.type == "cuda":
            torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"updates_per_s": round(updates / elapsed, 1), "peak_memory_mib": round(peak, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--transitions", type=int, default=100_000)
    args = parser.parse_args()
    devices = [d for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    dataset = synthetic_dataset(args.transitions)
    rows = []
    print(f"agent updates/s, batch {args.batch_size} (peak memory: process RSS on CPU, allocator peak on CUDA)")
    print(f"{'device':>6} {'history_len':>11} {'n_step':>6} {'updates/s':>10} {'peak MiB':>9}")
    for device_name in devices:
        for history_len, n_step in ((1, 1), (8, 5)):
            torch.manual_seed(0)
            result = measure(dataset, torch.device(device_name), history_len, n_step, args.batch_size, args.seconds)
            rows.append({"device": device_name, "history_len": history_len, "n_step": n_step, **result})
            print(f"{device_name:>6} {history_len:>11} {n_step:>6} {result['updates_per_s']:>10.1f} "
                  f"{result['peak_memory_mib']:>9.1f}")
    print(json.dumps({"benchmark": "throughput", "batch_size": args.batch_size, "hardware": hardware(),
                      "results": rows}))


if __name__ == "__main__":
    main()
