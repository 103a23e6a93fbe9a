"""The Mish MLP every Diffusion-QL network is built from."""

from __future__ import annotations

from torch import nn


def mish_mlp(input_dim: int, hidden_dim: int, hidden_layers: int, output_dim: int | None) -> nn.Sequential:
    """Linear-Mish x ``hidden_layers``, then a Linear to ``output_dim`` (omitted when None)."""
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_dim), nn.Mish()]
        width = hidden_dim
    if output_dim is not None:
        layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)
