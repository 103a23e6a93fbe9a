"""Agent updates per second and peak memory at batch 256, for K batched members, on CPU and (when present) CUDA.

Usage: python benchmarks/throughput.py [--devices cpu cuda] [--members 1 4] [--seconds 10] [--matmul-floor]
Configurations: (history_len 1, n_step 1) = Diffusion-QL, and (history_len 8, n_step 5), each with K members
trained as one batch (K seeds). updates/s counts batched updates; member-updates/s is K times that, the
figure to compare with K separate runs. On CUDA the update is the training loop's, a replayed CUDA graph.
Prints a table, then one JSON line with every figure. With --matmul-floor it also counts the FLOPs of
an update's matrix products (torch.profiler, from their shapes) and divides them by the rate of a bare
256-cube float32 matmul on the CPU: the time no rewrite that keeps the maths can go below.
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
from trajdiff.engine import UpdateEngine, graph_support  # noqa: E402


def build(dataset, device: torch.device, history_len: int, n_step: int, batch_size: int,  # noqa: ANN001
          members: int = 1, capture: bool = True) -> UpdateEngine:
    """The training loop's engine; with ``capture``, its update as a CUDA graph where the device allows."""
    seeds = list(range(members))
    sampler = TrajectorySampler(dataset, history_len, [n_step] * members, [0.99] * members, seeds, device=device)
    agent = DiffusionQLAgent(dataset.observation_dim, dataset.action_dim, 1.0,
                             [AgentConfig(history_len=history_len, n_step=n_step)] * members, 10**6, device, seeds)
    engine = UpdateEngine(agent, sampler, batch_size, None)
    if capture and graph_support(device) is None:
        engine.capture()
    return engine


def measure(dataset, device: torch.device, history_len: int, n_step: int, batch_size: int,  # noqa: ANN001
            members: int, seconds: float) -> dict[str, float]:
    engine = build(dataset, device, history_len, n_step, batch_size, members)
    for _ in range(20):  # warm-up: allocator, kernels, the EMA phase does not change the cost
        engine.update()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            engine.update()
        updates += 10
        if device.type == "cuda":
            torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"updates_per_s": round(updates / elapsed, 1), "member_updates_per_s": round(members * updates / elapsed, 1),
            "peak_memory_mib": round(peak, 1)}


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def matmul_gflop_per_update(dataset, history_len: int, n_step: int, batch_size: int) -> float:  # noqa: ANN001
    """FLOPs of one CPU update's matrix products, as torch.profiler derives them from the operands' shapes."""
    engine = build(dataset, torch.device("cpu"), history_len, n_step, batch_size)
    engine.update()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as profiler:
        engine.update()
    return sum(event.flops for event in profiler.key_averages() if event.key in MATMUL_OPS) / 1e9


def bare_matmul_gflop_per_s(size: int = 256, seconds: float = 3.0) -> float:
    """GFLOP/s of back-to-back (size x size) @ (size x size) float32 products on the CPU."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    for _ in range(50):
        torch.mm(left, right)
    products, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            torch.mm(left, right)
        products += 100
    return 2 * size**3 * products / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--members", nargs="+", type=int, default=[1], help="members K per batched update")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--matmul-floor", action="store_true",
                        help="also bound the CPU update from below by its matmul FLOPs at the bare matmul rate")
    args = parser.parse_args()
    devices = [d for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    dataset = synthetic_dataset(args.transitions)
    rows = []
    print(f"agent updates/s, batch {args.batch_size} per member (peak memory: process RSS on CPU, allocator peak "
          "on CUDA)")
    print(f"{'device':>6} {'history_len':>11} {'n_step':>6} {'members':>7} {'updates/s':>10} {'member-upd/s':>12} "
          f"{'peak MiB':>9}")
    for device_name in devices:
        for history_len, n_step in ((1, 1), (8, 5)):
            for members in args.members:
                torch.manual_seed(0)
                result = measure(dataset, torch.device(device_name), history_len, n_step, args.batch_size, members,
                                 args.seconds)
                rows.append({"device": device_name, "history_len": history_len, "n_step": n_step, "members": members,
                             **result})
                print(f"{device_name:>6} {history_len:>11} {n_step:>6} {members:>7} {result['updates_per_s']:>10.1f} "
                      f"{result['member_updates_per_s']:>12.1f} {result['peak_memory_mib']:>9.1f}")
    summary = {"benchmark": "throughput", "batch_size": args.batch_size, "hardware": hardware(), "results": rows}
    if args.matmul_floor:  # after the timings, so that the profiler does not touch the peak memory figures
        rate = bare_matmul_gflop_per_s(seconds=min(3.0, args.seconds))
        summary["bare_matmul_gflop_per_s"] = round(rate, 1)
        print(f"matmul floor (CPU, {torch.get_num_threads()} thread(s); a bare 256-cube matmul: {rate:.1f} GFLOP/s)")
        for row in rows:
            if row["device"] != "cpu" or row["members"] != 1:
                continue
            gflop = matmul_gflop_per_update(dataset, row["history_len"], row["n_step"], args.batch_size)
            floor_ms, update_ms = 1000 * gflop / rate, 1000 / row["updates_per_s"]
            row |= {"matmul_gflop_per_update": round(gflop, 3), "matmul_floor_ms": round(floor_ms, 1)}
            print(f"  history {row['history_len']}, n-step {row['n_step']}: {gflop:.2f} GFLOP of matmuls per update "
                  f"= {floor_ms:.1f} ms at that rate, {100 * floor_ms / update_ms:.0f}% of the measured "
                  f"{update_ms:.1f} ms (at most {1000 / floor_ms:.0f} updates/s if nothing else took time)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
