"""The GPU check: CUDA-graph updates against eager ones, throughput, and a train / resume / CPU-eval round trip.

Usage: python benchmarks/gpu_check.py [--device cuda] [--quick] [--out DIR]

With only the installed package, on a CUDA machine, in about 5 minutes of an H100/H200:
  (a) graph: K = 1 and K = 4 members, 200 updates each as a replayed CUDA graph and eagerly from the same
      seeds; the largest weight difference and the loss difference must stay within TOLERANCE;
  (b) throughput: updates/s and member-updates/s for K = 1, 8, 16, 32 at history 1 / n-step 1 and
      history 8 / n-step 5, graph and eager, with the GPU's name;
  (c) round trip: a 300-update ``trajdiff train`` with evaluations on the embedded dataset, a resume to 400,
      and ``trajdiff eval --device cpu`` of the CUDA-trained run;
  (d) one JSON line with every figure and a pass / fail per part.
Without CUDA it says so in one line and exits 0. ``--device cpu --quick`` runs the same code at toy sizes
on the CPU (eager only: part (a) is skipped there), which is how the test suite keeps this script working.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware  # noqa: E402
from sampler import synthetic_dataset  # noqa: E402
from throughput import build  # noqa: E402

from trajdiff.cli import main as trajdiff_main  # noqa: E402
from trajdiff.engine import graph_support  # noqa: E402

TOLERANCE = 1e-4
"""Largest absolute difference allowed between graph and eager weights (and relative, between losses) after
200 updates: the same kernels on the same data, so only a non-deterministic kernel could move them."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def graph_against_eager(dataset, device: torch.device, members: int, updates: int) -> dict:  # noqa: ANN001
    graphed, eager = (build(dataset, device, 3, 2, 256, members, capture=capture) for capture in (True, False))
    for _ in range(updates):
        graphed.update()
        eager.update()
    synchronize(device)
    weights = max((mine - theirs).abs().max().item() for mine, theirs in
                  zip(graphed.agent.actor.parameters(), eager.agent.actor.parameters()))
    graphed_loss, eager_loss = graphed.means()["critic_loss"], eager.means()["critic_loss"]
    loss = ((graphed_loss - eager_loss).abs() / eager_loss.abs().clamp(min=1e-8)).max().item()
    return {"members": members, "updates": updates, "max_weight_difference": weights,
            "max_relative_critic_loss_difference": loss, "pass": weights <= TOLERANCE and loss <= TOLERANCE}


def updates_per_second(dataset, device: torch.device, history_len: int, n_step: int, members: int,  # noqa: ANN001
                       graph: bool, seconds: float) -> dict:
    engine = build(dataset, device, history_len, n_step, 256, members, capture=graph)
    for _ in range(10):
        engine.update()
    synchronize(device)
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            engine.update()
        updates += 10
        synchronize(device)
    rate = updates / (time.perf_counter() - start)
    return {"history_len": history_len, "n_step": n_step, "members": members, "graph": graph,
            "updates_per_s": round(rate, 1), "member_updates_per_s": round(members * rate, 1)}


def trajdiff_command(arguments: list[str]) -> None:
    """Run one ``trajdiff`` command in this process; a failure raises with its message."""
    try:
        trajdiff_main(arguments)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise RuntimeError(f"trajdiff {' '.join(arguments)} exited {stop.code}") from None


def round_trip(device: torch.device, folder: Path, updates: int) -> dict:
    run = folder / "run"
    first = ["train", "--dataset", "default", "--out", str(run), "--updates", str(updates), "--eval-every",
             str(updates // 2), "--eval-episodes", "2", "--checkpoint-every", str(updates // 2), "--history-len", "4",
             "--n-step", "3", "--device", str(device), "--no-tensorboard"]
    trajdiff_command(first)
    trajdiff_command(["train", "--resume", str(run), "--updates", str(updates + updates // 3)])
    trajdiff_command(["eval", str(run), "--episodes", "2", "--device", "cpu", "--json"])
    rows = (run / "progress.csv").read_text().strip().splitlines()
    return {"updates": updates, "resumed_to": updates + updates // 3, "progress_rows": len(rows) - 1,
            "pass": len(rows) - 1 == 3}


def part(name: str, results: dict, work: Callable[[], object]) -> None:
    """Run one part; an exception fails it (with its message) rather than the whole check."""
    started = time.perf_counter()
    try:
        results[name] = {"result": work()}
    except Exception as error:  # noqa: BLE001 - every failure is a reported result here
        results[name] = {"result": None, "error": f"{type(error).__name__}: {error}"}
    results[name]["seconds"] = round(time.perf_counter() - started, 1)


def part_passed(entry: dict) -> bool:
    result = entry["result"]
    if result is None:
        return False
    rows = result if isinstance(result, list) else [result]
    return all(row.get("pass", True) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="toy sizes (the test suite's run on a CPU)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the round trip's run (default: temporary)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible to this PyTorch; nothing to check")
        return
    quick = args.quick
    dataset = synthetic_dataset(3_000 if quick else 100_000)
    graph_reason = graph_support(device)
    members_list = (1, 2) if quick else (1, 8, 16, 32)
    seconds = 0.2 if quick else 3.0
    results: dict = {}
    print(f"gpu_check on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    if graph_reason is None:
        part("a_graph_against_eager", results, lambda: [graph_against_eager(dataset, device, k, 20 if quick else 200)
                                                        for k in (1, 4)])
    else:
        results["a_graph_against_eager"] = {"result": None, "skipped": graph_reason}
    modes = (True, False) if graph_reason is None else (False,)
    part("b_throughput", results, lambda: [
        updates_per_second(dataset, device, history_len, n_step, members, graph, seconds)
        for history_len, n_step in ((1, 1), (8, 5)) for members in members_list for graph in modes])
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.out or Path(temporary)
        part("c_round_trip", results, lambda: round_trip(device, folder, 30 if quick else 300))
    print(f"{'part':<22} {'status':<8} seconds")
    for name, entry in results.items():
        status = "skipped" if "skipped" in entry else ("pass" if part_passed(entry) else "FAIL")
        entry["status"] = status
        print(f"{name:<22} {status:<8} {entry.get('seconds', '')}  {entry.get('error', entry.get('skipped', ''))}")
    for row in (results["b_throughput"]["result"] or []):
        print(f"  history {row['history_len']}, n-step {row['n_step']}, K={row['members']:>2}, "
              f"{'graph' if row['graph'] else 'eager'}: {row['updates_per_s']} updates/s, "
              f"{row['member_updates_per_s']} member-updates/s")
    print(json.dumps({"benchmark": "gpu_check", "device": str(device), "hardware": hardware(), "quick": quick,
                      "pass": all(entry["status"] != "FAIL" for entry in results.values()), "parts": results}))


if __name__ == "__main__":
    main()
