"""Layers whose weights carry a leading member dimension: K independent networks in one batched product.

K members (seeds, or shape-compatible ablations) train as one computation: every weight is (K, ...)
and every activation (K, B, ...), so each layer is one ``baddbmm`` instead of K ``addmm``. Member k
reads and writes only slice k of every tensor, so members never exchange information. This was
measured against ``torch.func.stack_module_state`` + ``vmap`` and kept (docs/performance.md); it
also runs the hand-written CPU Mish and the GRU, which vmap cannot batch.

Initialisation is PyTorch's (``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias;
``nn.GRU``: U(-1/sqrt(hidden), 1/sqrt(hidden)) for all), drawn for each member from that member's
own generator, so a member's initial weights depend only on its seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from trajdiff.nets.mlp import Mish


def _uniform(generators: Sequence[torch.Generator], shape: tuple[int, ...], bound: float) -> torch.Tensor:
    """(K, *shape) with member k's values drawn from generators[k], U(-bound, bound), on the generators' device
    (the CPU: networks are built there, the same on every device, then moved to the agent's)."""
    return torch.stack([(torch.rand(shape, generator=g, device=g.device) * 2 - 1) * bound for g in generators])


def member_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x_k W_k (+ b_k) for each member. Shapes: x (K, B, in), weight (K, in, out), bias (K, 1, out) -> (K, B, out).

    One member goes through addmm / mm: on the 2-core CPU they run a whole update about 10% faster than
    the batched kernels at K = 1 (profiled), and give bitwise the same products.
    """
    if x.shape[0] == 1:  # squeeze, not [0]: its backward is a view, where indexing's fills a zero tensor
        x, weight = x.squeeze(0), weight.squeeze(0)
        product = torch.mm(x, weight) if bias is None else torch.addmm(bias.squeeze(0), x, weight)
        return product.unsqueeze(0)
    return torch.bmm(x, weight) if bias is None else torch.baddbmm(bias, x, weight)


class MemberLinear(nn.Module):
    """y = x W_k + b_k for each member k. Shapes: x (K, B, in) -> (K, B, out); weight (K, in, out)."""

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        # (in, out) per member: x @ W needs no transpose in baddbmm
        self.weight = nn.Parameter(_uniform(generators, (out_features, in_features), bound).transpose(1, 2)
                                   .contiguous())
        self.bias = nn.Parameter(_uniform(generators, (1, out_features), bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return member_matmul(x, self.weight, self.bias)


def member_mlp(input_dim: int, hidden_dim: int, hidden_layers: int, output_dim: int,
               generators: Sequence[torch.Generator]) -> nn.Sequential:
    """Diffusion-QL's MLP per member: (Linear, Mish) x ``hidden_layers``, then a Linear to ``output_dim``."""
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(hidden_layers):
        layers += [MemberLinear(width, hidden_dim, generators), Mish()]
        width = hidden_dim
    layers.append(MemberLinear(width, output_dim, generators))
    return nn.Sequential(*layers)


class MemberGRU(nn.Module):
    """A batch_first GRU per member, with ``nn.GRU``'s equations and gate order (r, z, n).

    r = sigmoid(x W_ir + b_ir + h W_hr + b_hr), z = sigmoid(x W_iz + b_iz + h W_hz + b_hz),
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) * n + z * h, from h_0 = 0.
    The input products of all steps are one batched product; the recurrence is H small ones.
    Shapes: x (K, B, H, in) -> outputs of the last layer (K, B, H, hidden).
    """

    def __init__(self, input_dim: int, hidden_dim: int, layers: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_dim)
        self.hidden_dim = hidden_dim
        self.input_weights = nn.ParameterList()
        self.hidden_weights = nn.ParameterList()
        self.input_biases = nn.ParameterList()
        self.hidden_biases = nn.ParameterList()
        for layer in range(layers):
            width = input_dim if layer == 0 else hidden_dim
            self.input_weights.append(nn.Parameter(_uniform(generators, (width, 3 * hidden_dim), bound)))
            self.hidden_weights.append(nn.Parameter(_uniform(generators, (hidden_dim, 3 * hidden_dim), bound)))
            self.input_biases.append(nn.Parameter(_uniform(generators, (1, 3 * hidden_dim), bound)))
            self.hidden_biases.append(nn.Parameter(_uniform(generators, (1, 3 * hidden_dim), bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, batch, horizon, _ = x.shape
        hidden = self.hidden_dim
        for w_input, w_hidden, b_input, b_hidden in zip(self.input_weights, self.hidden_weights,
                                                        self.input_biases, self.hidden_biases):
            gates_x = member_matmul(x.reshape(members, batch * horizon, -1), w_input, b_input)
            gates_x = gates_x.view(members, batch, horizon, 3 * hidden)
            h = x.new_zeros(members, batch, hidden)
            outputs = []
            # unbind, not gates_x[:, :, step]: the backward of one indexing per step writes a zero-filled
            # (K, B, H, 3 hidden) gradient H times; unbind's is one stack
            for gates in gates_x.unbind(dim=2):
                gates_h = member_matmul(h, w_hidden, b_hidden)  # (K, B, 3 hidden)
                reset, update = torch.sigmoid(gates[..., :2 * hidden] + gates_h[..., :2 * hidden]).split(hidden, -1)
                candidate = torch.tanh(torch.addcmul(gates[..., 2 * hidden:], reset, gates_h[..., 2 * hidden:]))
                h = torch.lerp(candidate, h, update)  # (1 - z) n + z h
                outputs.append(h)
            x = torch.stack(outputs, dim=2)
        return x
