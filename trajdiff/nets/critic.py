"""Diffusion-QL's double-Q critic: two independent 3 x 256 Mish heads over [state, action], per member."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trajdiff.nets.members import MemberLinear, member_matmul, member_mlp


class TwinCritic(nn.Module):
    """Q1(s, a), Q2(s, a). Shapes: state (K, B, Ds), action (K, B, Da) -> two (K, B, 1)."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int,
                 generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.q1 = member_mlp(state_dim + action_dim, hidden_dim, 3, 1, generators)
        self.q2 = member_mlp(state_dim + action_dim, hidden_dim, 3, 1, generators)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([state, action], dim=-1)
        return self.q1(x), self.q2(x)

    def head(self, state: torch.Tensor, action: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Q1 for the members where ``first`` (K,) bool is True, Q2 for the others: (K, B, 1).

        One head's cost: each layer's weights are picked per member, so a backward pass runs through
        one network, not through both with zero gradients in one of them.
        """
        x = torch.cat([state, action], dim=-1)
        choose = first[:, None, None]
        for layer_1, layer_2 in zip(self.q1, self.q2):
            if isinstance(layer_1, MemberLinear):
                x = member_matmul(x, torch.where(choose, layer_1.weight, layer_2.weight),
                                  torch.where(choose, layer_1.bias, layer_2.bias))
            else:
                x = layer_1(x)
        return x
