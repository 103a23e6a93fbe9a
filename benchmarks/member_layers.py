"""K members of a Diffusion-QL MLP: batched-weight layers (baddbmm) against torch.func vmap over stacked modules.

Usage: python benchmarks/member_layers.py [--device cpu|cuda] [--members 1 4 8] [--seconds 3]
Times forward + backward of K copies of the 3 x 256 Mish MLP (input 25, output 3) at batch 256, both with
PyTorch's own Mish (vmap has no batching rule for trajdiff's CPU Mish, a custom autograd Function). This is
the measurement behind trajdiff.nets.members choosing batched-weight layers. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hardware  # noqa: E402

from trajdiff.nets.members import MemberLinear  # noqa: E402

INPUT, HIDDEN, OUTPUT, BATCH = 25, 256, 3, 256


def plain_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(INPUT, HIDDEN), nn.Mish(), nn.Linear(HIDDEN, HIDDEN), nn.Mish(),
                         nn.Linear(HIDDEN, HIDDEN), nn.Mish(), nn.Linear(HIDDEN, OUTPUT))


def batched_weights(members: int, device: torch.device):  # noqa: ANN201
    generators = [torch.Generator().manual_seed(k) for k in range(members)]
    widths = [INPUT, HIDDEN, HIDDEN, HIDDEN, OUTPUT]
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(MemberLinear(width_in, width_out, generators))
        if index < 3:
            layers.append(nn.Mish())
    network = nn.Sequential(*layers).to(device)
    return network, list(network.parameters())


def vmapped(members: int, device: torch.device):  # noqa: ANN201
    modules = [plain_mlp().to(device) for _ in range(members)]
    parameters, buffers = stack_module_state(modules)
    template = plain_mlp().to("meta")

    def one(params, buffs, x):  # noqa: ANN001, ANN202
        return functional_call(template, (params, buffs), (x,))

    batched = vmap(one)
    return (lambda x: batched(parameters, buffers, x)), list(parameters.values())


def seconds_per_call(forward, parameters, members: int, device: torch.device, seconds: float) -> float:  # noqa: ANN001
    x = torch.randn(members, BATCH, INPUT, device=device)

    def step() -> None:
        for parameter in parameters:
            parameter.grad = None
        forward(x).square().mean().backward()

    for _ in range(5):
        step()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        calls += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--members", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    print(f"forward + backward of K Mish MLPs (3 x {HIDDEN}, batch {BATCH}) on {device}: member-calls per second")
    print(f"{'members':>7} {'baddbmm':>10} {'vmap':>10}")
    for members in args.members:
        for name, build in (("baddbmm", batched_weights), ("vmap", vmapped)):
            torch.manual_seed(0)
            forward, parameters = build(members, device)
            rate = members / seconds_per_call(forward, parameters, members, device, args.seconds)
            rows.append({"members": members, "mechanism": name, "member_calls_per_s": round(rate, 1)})
        print(f"{members:>7} {rows[-2]['member_calls_per_s']:>10.1f} {rows[-1]['member_calls_per_s']:>10.1f}")
    print(json.dumps({"benchmark": "member_layers", "device": args.device, "hardware": hardware(), "results": rows}))


if __name__ == "__main__":
    main()
