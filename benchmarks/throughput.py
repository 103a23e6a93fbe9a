"""Agent updates per second and peak memory at batch 256, for K batched members, on CPU and (when present) CUDA.

Usage: python benchmarks/throughput.py [--devices cpu cuda] [--members 1 5 8] [--seconds 10] [--matmul-floor]
       [--histories 1 4 8] [--targets nstep lambda chunk] [--q-actions sampled approximated] [--modes eager compiled]
Configurations: (history_len 1, n_step 1) = Diffusion-QL, (history_len 4, n_step 4) and (history_len 8, n_step 5),
each with K members trained as one batch (K seeds), for each critic target (the n-step return; the lambda-return
over the same n steps, lambda 0.5; or action chunks of h = n actions, whose target is the chunk's n-step return)
and each Q-term action (sampled through the reverse chain, Diffusion-QL's; or approximated in one step).
updates/s counts batched updates; member-updates/s is K times that, the figure to compare with K separate runs.
On CUDA the eager update is the training loop's, a replayed CUDA graph; mode "compiled" is torch.compile's
(--compile-update). On CPU the peak memory is the process's RSS peak so far, so it belongs to a row only when the
process measures one row (one value of each option).
Prints a table, then one JSON line with every figure. With --matmul-floor it also counts the FLOPs of
an update's matrix products (torch.profiler, from their shapes; K members do K times one member's) and
divides them by the rate of a bare 256-cube float32 matmul on the CPU: the time no rewrite that keeps the
maths can go below, and each CPU row's fraction of it.
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
from trajdiff.engine import UpdateEngine, update_mode  # noqa: E402

TARGETS = ("nstep", "lambda", "chunk")
"""--targets: the critic targets measured."""


def target_fields(target: str, n_step: int) -> dict:
    """The agent fields of a critic target at a configuration's n_step (a chunk is n_step actions long)."""
    return {"nstep": {}, "lambda": {"critic_target": "lambda"}, "chunk": {"action_chunk": n_step}}[target]


def build(dataset, device: torch.device, history_len: int, n_step: int, batch_size: int,  # noqa: ANN001
          members: int = 1, capture: bool = True, compile_update: bool = False, **fields: object) -> UpdateEngine:
    """The training loop's engine; with ``capture``, its update as a CUDA graph where the device allows, and
    with ``compile_update`` compiled by torch.compile (then without a graph). ``fields``: other AgentConfig
    fields (q_action, critic_target, action_chunk)."""
    seeds = list(range(members))
    configs = [AgentConfig(history_len=history_len, n_step=n_step, **fields)] * members
    sampler = TrajectorySampler(dataset, configs, seeds, device)
    agent = DiffusionQLAgent(dataset.observation_dim, dataset.action_dim, 1.0, configs, 10**6, device, seeds)
    engine = UpdateEngine(agent, sampler, batch_size, None, update_mode(device, capture, compile_update)[0])
    engine.start()
    return engine


def measure(dataset, device: torch.device, history_len: int, n_step: int, batch_size: int,  # noqa: ANN001
            members: int, seconds: float, compiled: bool = False, **fields: object) -> dict[str, float]:
    engine = build(dataset, device, history_len, n_step, batch_size, members, compile_update=compiled, **fields)
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


SHAPES = {1: (1, 1), 4: (4, 4), 8: (8, 5)}
"""--histories: history length -> (history_len, n_step) of the configuration measured."""

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def matmul_gflop_per_update(dataset, history_len: int, n_step: int, batch_size: int,  # noqa: ANN001
                            **fields: object) -> float:
    """FLOPs of one member's CPU update's matrix products, as torch.profiler derives them from the operands'
    shapes."""
    engine = build(dataset, torch.device("cpu"), history_len, n_step, batch_size, **fields)
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
    parser.add_argument("--q-actions", nargs="+", default=["sampled"], choices=["sampled", "approximated"],
                        help="the Q-term's action: sampled through the reverse chain, or approximated in one step")
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=["eager", "compiled"],
                        help="the update as it runs eagerly (a CUDA graph on CUDA), or compiled by torch.compile")
    parser.add_argument("--histories", nargs="+", type=int, default=[1, 8], choices=list(SHAPES),
                        help="history 1 (n-step 1, Diffusion-QL), history 4 (n-step 4), history 8 (n-step 5)")
    parser.add_argument("--targets", nargs="+", default=["nstep"], choices=list(TARGETS),
                        help="critic targets: n-step, lambda-return (same n), action chunks of n (configurations "
                             "with n-step 1 measure n-step alone)")
    args = parser.parse_args()
    devices = [d for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    dataset = synthetic_dataset(args.transitions)
    rows = []
    print(f"agent updates/s, batch {args.batch_size} per member (peak memory: process RSS on CPU, allocator peak "
          "on CUDA)")
    print(f"{'device':>6} {'history_len':>11} {'n_step':>6} {'target':>6} {'q_action':>12} {'compiled':>8} "
          f"{'members':>7} {'updates/s':>10} {'member-upd/s':>12} {'peak MiB':>9}")
    configurations = [(history_len, n_step, target) for history_len, n_step in map(SHAPES.get, args.histories)
                      for target in args.targets if n_step > 1 or target == "nstep"]
    for device_name in devices:
        for history_len, n_step, target in configurations:
            for q_action in args.q_actions:
                for compiled in [mode == "compiled" for mode in args.modes]:
                    for members in args.members:
                        torch.manual_seed(0)
                        result = measure(dataset, torch.device(device_name), history_len, n_step, args.batch_size,
                                         members, args.seconds, compiled, q_action=q_action,
                                         **target_fields(target, n_step))
                        rows.append({"device": device_name, "history_len": history_len, "n_step": n_step,
                                     "target": target, "q_action": q_action, "compiled": compiled,
                                     "members": members, **result})
                        print(f"{device_name:>6} {history_len:>11} {n_step:>6} {target:>6} {q_action:>12} "
                              f"{str(compiled):>8} {members:>7} {result['updates_per_s']:>10.1f} "
                              f"{result['member_updates_per_s']:>12.1f} {result['peak_memory_mib']:>9.1f}")
    summary = {"benchmark": "throughput", "batch_size": args.batch_size, "hardware": hardware(), "results": rows}
    if args.matmul_floor:  # after the timings, so that the profiler does not touch the peak memory figures
        rate = bare_matmul_gflop_per_s(seconds=min(3.0, args.seconds))
        summary["bare_matmul_gflop_per_s"] = round(rate, 1)
        print(f"matmul floor (CPU, {torch.get_num_threads()} thread(s); a bare 256-cube matmul: {rate:.1f} GFLOP/s)")
        member_gflop = {}
        for row in rows:
            if row["device"] != "cpu":
                continue
            key = (row["history_len"], row["n_step"], row["target"], row["q_action"])
            if key not in member_gflop:
                member_gflop[key] = matmul_gflop_per_update(dataset, *key[:2], args.batch_size, q_action=key[3],
                                                            **target_fields(key[2], key[1]))
            gflop = row["members"] * member_gflop[key]
            floor_ms, update_ms = 1000 * gflop / rate, 1000 / row["updates_per_s"]
            row |= {"matmul_gflop_per_update": round(gflop, 3), "matmul_floor_ms": round(floor_ms, 1),
                    "floor_fraction": round(floor_ms / update_ms, 3)}
            print(f"  history {row['history_len']}, n-step {row['n_step']}, {row['target']}, {row['q_action']}, "
                  f"K={row['members']}"
                  f"{', compiled' if row['compiled'] else ''}: "
                  f"{gflop:.2f} GFLOP of matmuls per update = {floor_ms:.1f} ms at that rate, "
                  f"{100 * floor_ms / update_ms:.0f}% of the measured {update_ms:.1f} ms (at most "
                  f"{row['members'] * 1000 / floor_ms:.0f} member-updates/s if nothing else took time)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
