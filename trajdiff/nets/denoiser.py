"""Diffusion-QL's noise-prediction MLP over [noisy action, time embedding, context]."""

from __future__ import annotations

import math

import torch
from torch import nn

from trajdiff.nets.mlp import Mish, mish_mlp


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sin/cos embedding of the diffusion step. (B,) -> (B, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        frequencies = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[:, None] * self.frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Denoiser(nn.Module):
    """eps_theta(x_t, t, context): 3 x 256 Mish layers, time embedding 16 -> 32 -> 16 (Diffusion-QL).

    Shapes: noisy_action (B, Da), t (B,) int64, context (B, C) -> (B, Da).
    """

    def __init__(self, action_dim: int, context_dim: int, hidden_dim: int = 256, time_dim: int = 16) -> None:
        super().__init__()
        self.time_embedding = nn.Sequential(
            SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim * 2), Mish(),
            nn.Linear(time_dim * 2, time_dim),
        )
        self.body = mish_mlp(action_dim + time_dim + context_dim, hidden_dim, 3, action_dim)

    def forward(self, noisy_action: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([noisy_action, self.time_embedding(t), context], dim=-1))
