"""TrajectorySampler: vectorised sampling of history windows with n-step targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.returns import n_step_targets


@dataclass(frozen=True)
class WindowBatch:
    """A batch of training windows, all tensors on the sampler's device.

    Shapes: B batch, H history_len, Do observation size, Da action size.
    history (B, H, Do): the H observations ending at the sampled step t, zero-padded before the
        episode's start; history_mask (B, H) bool, True on real steps (always True at the end).
    actions (B, Da): the action taken at t.
    n_step_return (B,): sum_{i<k} gamma^i r_{t+i}, k = min(n_step, steps left in the episode).
    bootstrap_history (B, H, Do), bootstrap_mask (B, H): the window ending at the state after the
        k steps, whose last entry is the stored next_observations[t + k - 1].
    bootstrap_discount (B,): gamma^k, or 0 when the window ends on a terminal.
    indices (B,) int64 flat step indices; episode_index (B,) int64 episode of each step.
    """

    history: torch.Tensor
    history_mask: torch.Tensor
    actions: torch.Tensor
    n_step_return: torch.Tensor
    bootstrap_history: torch.Tensor
    bootstrap_mask: torch.Tensor
    bootstrap_discount: torch.Tensor
    indices: torch.Tensor
    episode_index: torch.Tensor

    @property
    def observations(self) -> torch.Tensor:
        """(B, Do) the current state s_t."""
        return self.history[:, -1]

    @property
    def bootstrap_observations(self) -> torch.Tensor:
        """(B, Do) the state the critic bootstraps from (s' when n_step is 1)."""
        return self.bootstrap_history[:, -1]


class TrajectorySampler:
    """Uniform sampling over every time step of every episode, as history windows.

    All arrays (observations, n-step returns, bootstrap indices and discounts) are computed once
    and kept on ``device``; a batch is then a handful of gathers with no Python loop over its
    elements and no host/device copy. With history_len 1 and n_step 1 a batch is exactly the
    plain transition batch (s, a, r, s', gamma * not_done).
    """

    def __init__(
        self,
        dataset: EpisodeDataset,
        history_len: int,
        n_step: int,
        discount: float,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if history_len < 1 or n_step < 1:
            raise ValueError("history_len and n_step must be at least 1")
        self.history_len = history_len
        self.n_step = n_step
        self.discount = discount
        self.device = torch.device(device)
        self.size = dataset.num_transitions
        returns, bootstrap_last, bootstrap_discount = n_step_targets(
            dataset.rewards, dataset.terminals, dataset.episode_ends, dataset.episode_lengths,
            n_step, discount,
        )
        # One lookup table for both windows: observations in rows [0, N), next_observations in
        # [N, 2N) and a zero row at 2N that every padded position points to.
        table = np.concatenate([dataset.observations, dataset.next_observations,
                                np.zeros((1, dataset.observation_dim), np.float32)])
        self.padding_row = 2 * self.size

        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

        self.table = to_device(table)
        self.actions = to_device(dataset.actions)
        self.n_step_return = to_device(returns)
        self.bootstrap_discount = to_device(bootstrap_discount)
        self.bootstrap_last = to_device(bootstrap_last)
        self.episode_index = to_device(dataset.episode_index)
        self.episode_start = to_device(np.repeat(dataset.episode_starts, dataset.episode_lengths))
        # Offsets of a window's observations relative to its last observation: (-(H-1), ..., 0).
        self.offsets = torch.arange(-(history_len - 1), 1, device=self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def sample(self, batch_size: int) -> WindowBatch:
        """Windows at ``batch_size`` time steps drawn uniformly with replacement."""
        indices = torch.randint(self.size, (batch_size,), generator=self.generator, device=self.device)
        return self.windows(indices)

    def windows(self, indices: torch.Tensor | np.ndarray) -> WindowBatch:
        """The batch for given flat step indices (B,)."""
        indices = torch.as_tensor(indices, device=self.device, dtype=torch.int64)
        start = self.episode_start[indices].unsqueeze(1)  # (B, 1)
        last = self.bootstrap_last[indices]  # (B,)
        # history: observations t-H+1 .. t; bootstrap: observations t+k-H+1 .. t+k-1, then
        # next_observations[t+k-1] (row N + t+k-1 of the table).
        history_rows = indices.unsqueeze(1) + self.offsets
        bootstrap_rows = (last + 1).unsqueeze(1) + self.offsets
        rows = torch.cat([history_rows, bootstrap_rows], dim=1)  # (B, 2H)
        mask = rows >= start
        mask[:, -1] = True
        rows[:, -1] = last + self.size
        rows = torch.where(mask, rows, self.padding_row)
        windows = self.table[rows]  # (B, 2H, Do)
        h = self.history_len
        return WindowBatch(
            history=windows[:, :h], history_mask=mask[:, :h],
            actions=self.actions[indices], n_step_return=self.n_step_return[indices],
            bootstrap_history=windows[:, h:], bootstrap_mask=mask[:, h:],
            bootstrap_discount=self.bootstrap_discount[indices],
            indices=indices, episode_index=self.episode_index[indices],
        )
