"""Diffusion-QL's noise-prediction MLP over [noisy action, time embedding, context]."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
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

    Shapes: noisy_action (B, Da), t (B,) int64 in [0, steps) or one int for the whole batch,
    context (B, C) -> (B, Da).
    """

    def __init__(self, action_dim: int, context_dim: int, steps: int, hidden_dim: int = 256,
                 time_dim: int = 16) -> None:
        super().__init__()
        self.action_dim, self.time_dim = action_dim, time_dim
        self.time_embedding = nn.Sequential(
            SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim * 2), Mish(),
            nn.Linear(time_dim * 2, time_dim),
        )
        self.body = mish_mlp(action_dim + time_dim + context_dim, hidden_dim, 3, action_dim)
        self.register_buffer("all_steps", torch.arange(steps), persistent=False)

    def forward(self, noisy_action: torch.Tensor, t: torch.Tensor | int, context: torch.Tensor) -> torch.Tensor:
        return self.condition(context)(noisy_action, t)

    def condition(self, context: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor | int], torch.Tensor]:
        """eps_theta(., ., context) for one batch of contexts: (noisy_action, t) -> predicted noise.

        The first layer is linear in the concatenation [noisy action, time embedding, context], so it
        is a sum of three products. The context's is the same at every step of the reverse chain and
        the time embedding takes only T values, so both are computed here once, as (B, hidden) and
        (T, hidden), and each denoising step costs the noisy action's product and the hidden layers.
        Equal to the concatenated layer up to float rounding (tests/nets/test_denoiser.py).
        """
        first, rest = self.body[0], self.body[1:]
        action_end, time_end = self.action_dim, self.action_dim + self.time_dim
        context_term = F.linear(context, first.weight[:, time_end:], first.bias)  # (B, hidden)
        time_term = F.linear(self.time_embedding(self.all_steps), first.weight[:, action_end:time_end])  # (T, hidden)
        action_weight = first.weight[:, :action_end]

        def denoise(noisy_action: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
            # an int t selects one (hidden,) row that broadcasts over the batch, a (B,) t gathers rows
            return rest(F.linear(noisy_action, action_weight) + time_term[t] + context_term)

        return denoise
