"""A context from the recent states: the current state, plus a GRU summary of the window when H > 1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from trajdiff.nets.members import MemberGRU


class HistoryEncoder(nn.Module):
    """context = [s_t, GRU(valid part of the window)] for history_len > 1, and just s_t for 1.

    With ``kind="frames"`` (the frame-stack baseline) the context is the window itself, flattened: the H
    observations concatenated, zeros where padded, no recurrent network.

    The window is left-padded (padding first, s_t last). Each row is rotated so its valid steps
    come first, the GRU runs over all H steps in one call, and the output is read at the last
    valid step: a causal GRU never sees the padding that now trails, so padded values cannot
    change the context. With history_len 1 the encoder has no parameters and the context is
    exactly Diffusion-QL's state.

    Shapes: history (K, B, H, Do), mask (K, B, H) bool -> (K, B, Do + hidden_dim), (K, B, H Do) for frames,
    or (K, B, Do) when H = 1.
    """

    def __init__(self, observation_dim: int, history_len: int, hidden_dim: int, layers: int,
                 generators: Sequence[torch.Generator], kind: Literal["gru", "frames"] = "gru") -> None:
        super().__init__()
        self.history_len, self.frames = history_len, kind == "frames" and history_len > 1
        use_gru = kind == "gru" and history_len > 1
        self.gru = MemberGRU(observation_dim, hidden_dim, layers, generators) if use_gru else None
        self.output_dim = (history_len * observation_dim if self.frames
                           else observation_dim + (hidden_dim if self.gru is not None else 0))

    def forward(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        state = history[:, :, -1]
        if self.frames:
            return (history * mask[..., None]).flatten(2)
        if self.gru is None:
            return state
        horizon = history.shape[2]
        lengths = mask.sum(dim=2)  # (K, B) >= 1: the last step is always real
        steps = torch.arange(horizon, device=history.device)
        rotation = (steps + (horizon - lengths)[..., None]) % horizon  # (K, B, H): valid steps first
        rotated = torch.gather(history, 2, rotation[..., None].expand_as(history))
        outputs = self.gru(rotated)  # (K, B, H, hidden)
        summary = torch.gather(outputs, 2, (lengths - 1)[..., None, None].expand(-1, -1, 1, outputs.shape[-1]))
        return torch.cat([state, summary.squeeze(2)], dim=-1)
