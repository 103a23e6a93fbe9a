"""Diffusion-QL's noise-prediction MLP over [noisy action, time embedding, context], per member."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from trajdiff.diffusion.reverse import NoisePredictor
from trajdiff.nets.members import MemberLinear, member_matmul, member_mlp
from trajdiff.nets.mlp import Mish


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sin/cos embedding of the diffusion step. (...,) -> (..., dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        frequencies = torch.exp(torch.arange(half, device="cpu") * -(math.log(10000) / (half - 1)))
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.float()[..., None] * self.frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Denoiser(nn.Module):
    """eps_theta(x_t, t, context): 3 x 256 Mish layers, time embedding 16 -> 32 -> 16 (Diffusion-QL).

    Shapes: noisy_action (K, B, Da), t (K, B) int64 in [0, steps) or one int for the whole batch,
    context (K, B, C) -> (K, B, Da).
    """

    def __init__(self, action_dim: int, context_dim: int, steps: int, hidden_dim: int,
                 generators: Sequence[torch.Generator], time_dim: int = 16) -> None:
        super().__init__()
        self.action_dim, self.time_dim = action_dim, time_dim
        self.embedding = SinusoidalEmbedding(time_dim)
        self.time_mlp = nn.Sequential(MemberLinear(time_dim, time_dim * 2, generators), Mish(),
                                      MemberLinear(time_dim * 2, time_dim, generators))
        self.body = member_mlp(action_dim + time_dim + context_dim, hidden_dim, 3, action_dim, generators)
        self.register_buffer("all_steps", torch.arange(steps, device="cpu"), persistent=False)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        """(K, B) steps -> (K, B, time_dim)."""
        return self.time_mlp(self.embedding(t))

    def condition(self, context: torch.Tensor) -> NoisePredictor:
        """eps_theta(., ., context) for one batch of contexts: (noisy_action, t) -> predicted noise.

        The first layer is linear in the concatenation [noisy action, time embedding, context], so it
        is a sum of three products. The context's is the same at every step of the reverse chain and
        the time embedding takes only T values, so both are computed here once, as (K, B, hidden) and
        (K, T, hidden), and each denoising step costs the noisy action's product and the hidden layers.
        Equal to the concatenated layer up to float rounding (tests/nets/test_denoiser.py).
        """
        first, rest = self.body[0], self.body[1:]
        action_end, time_end = self.action_dim, self.action_dim + self.time_dim
        members = context.shape[0]
        context_term = member_matmul(context, first.weight[:, time_end:], first.bias)  # (K, B, hidden)
        steps = self.all_steps.expand(members, -1)
        time_term = member_matmul(self.time_embedding(steps), first.weight[:, action_end:time_end])  # (K, T, hidden)
        action_weight = first.weight[:, :action_end]

        def denoise(noisy_action: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
            if isinstance(t, int):  # one (K, 1, hidden) row per member, broadcast over the batch
                step_term = time_term[:, t, None]
            else:  # (K, B) steps: gather each row's
                step_term = torch.gather(time_term, 1, t[..., None].expand(-1, -1, time_term.shape[-1]))
            return rest(member_matmul(noisy_action, action_weight) + step_term + context_term)

        return denoise
