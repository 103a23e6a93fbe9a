"""The policy's context: the current state, plus a GRU summary of the recent states when H > 1."""

from __future__ import annotations

import torch
from torch import nn


class HistoryEncoder(nn.Module):
    """context = [s_t, GRU(valid part of the window)] for history_len > 1, and just s_t for 1.

    The window is left-padded (padding first, s_t last). Each row is rotated so its valid steps
    come first, the GRU runs over all H steps in one call, and the output is read at the last
    valid step: a causal GRU never sees the padding that now trails, so padded values cannot
    change the context. With history_len 1 the encoder has no parameters and the policy is
    exactly Diffusion-QL's.

    Shapes: history (B, H, Do), mask (B, H) bool -> (B, Do + hidden_dim), or (B, Do) when H = 1.
    """

    def __init__(self, observation_dim: int, history_len: int, hidden_dim: int = 64, layers: int = 1) -> None:
        super().__init__()
        self.history_len = history_len
        self.gru = nn.GRU(observation_dim, hidden_dim, num_layers=layers, batch_first=True) if history_len > 1 else None
        self.output_dim = observation_dim + (hidden_dim if self.gru is not None else 0)

    def forward(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        state = history[:, -1]
        if self.gru is None:
            return state
        horizon = history.shape[1]
        lengths = mask.sum(dim=1)  # (B,) >= 1: the last step is always real
        steps = torch.arange(horizon, device=history.device)
        rotation = (steps[None, :] + (horizon - lengths)[:, None]) % horizon  # valid steps first
        rotated = torch.gather(history, 1, rotation[:, :, None].expand_as(history))
        outputs, _ = self.gru(rotated)  # (B, H, hidden)
        summary = outputs[torch.arange(history.shape[0], device=history.device), lengths - 1]
        return torch.cat([state, summary], dim=-1)
