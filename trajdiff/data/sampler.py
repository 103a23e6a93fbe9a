"""TrajectorySampler: vectorised sampling of history windows with n-step targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.returns import n_step_targets
from trajdiff.streams import stream_generator


@dataclass(frozen=True)
class WindowBatch:
    """A batch of training windows for K members, all tensors on the sampler's device.

    Shapes: K members, B batch, H history_len, Do observation size, Da action size.
    history (K, B, H, Do): the H observations ending at the sampled step t, zero-padded before the
        episode's start; history_mask (K, B, H) bool, True on real steps (always True at the end).
    actions (K, B, Da): the action taken at t.
    n_step_return (K, B): sum_{i<k} gamma^i r_{t+i}, k = min(n_step of the member, steps left in the episode).
    bootstrap_history (K, B, H, Do), bootstrap_mask (K, B, H): the window ending at the state after the
        k steps, whose last entry is the stored next_observations[t + k - 1].
    bootstrap_discount (K, B): gamma^k, or 0 when the window ends on a terminal.
    indices (K, B) int64 flat step indices; episode_index (K, B) int64 episode of each step.
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
        """(K, B, Do) the current state s_t."""
        return self.history[..., -1, :]

    @property
    def bootstrap_observations(self) -> torch.Tensor:
        """(K, B, Do) the state the critic bootstraps from (s' when n_step is 1)."""
        return self.bootstrap_history[..., -1, :]


class TrajectorySampler:
    """Uniform sampling over every time step of every episode, as history windows, for K members.

    All arrays (observations, n-step returns, bootstrap indices and discounts) are computed once
    and kept on ``device``; a batch is then a handful of gathers with no Python loop over its
    elements and no host/device copy. Members share the observations and may differ in n_step and
    discount (their targets are (K, N) tables); member k draws its steps from the windows stream of
    its seed seeds[k] (trajdiff.streams), so its batches do not depend on the other members. With history_len 1 and
    n_step 1 a member's batch is exactly the plain transition batch (s, a, r, s', gamma * not_done).
    """

    def __init__(
        self,
        dataset: EpisodeDataset,
        history_len: int,
        n_steps: Sequence[int],
        discounts: Sequence[float],
        seeds: Sequence[int],
        device: str | torch.device = "cpu",
    ) -> None:
        if not len(n_steps) == len(discounts) == len(seeds) >= 1:
            raise ValueError("n_steps, discounts and seeds need one entry per member")
        if history_len < 1 or min(n_steps) < 1:
            raise ValueError("history_len and n_step must be at least 1")
        self.history_len = history_len
        self.device = torch.device(device)
        self.size = dataset.num_transitions
        targets = [n_step_targets(dataset.rewards, dataset.terminals, dataset.episode_ends, dataset.episode_lengths,
                                  n_step, discount) for n_step, discount in zip(n_steps, discounts)]
        # One lookup table for both windows: observations in rows [0, N), next_observations in
        # [N, 2N) and a zero row at 2N that every padded position points to.
        table = np.concatenate([dataset.observations, dataset.next_observations,
                                np.zeros((1, dataset.observation_dim), np.float32)])
        self.padding_row = 2 * self.size

        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

        self.table = to_device(table)
        self.actions = to_device(dataset.actions)
        self.n_step_return = to_device(np.stack([returns for returns, _, _ in targets]))  # (K, N)
        self.bootstrap_last = to_device(np.stack([last for _, last, _ in targets]))  # (K, N)
        self.bootstrap_discount = to_device(np.stack([discount for _, _, discount in targets]))  # (K, N)
        self.episode_index = to_device(dataset.episode_index)
        self.episode_start = to_device(np.repeat(dataset.episode_starts, dataset.episode_lengths))
        # Offsets of a window's observations relative to its last observation: (-(H-1), ..., 0).
        self.offsets = torch.arange(-(history_len - 1), 1, device=self.device)
        self.generators = [stream_generator(seed, "windows", device=self.device) for seed in seeds]

    def draw(self, batch_size: int) -> WindowBatch:
        """Windows at ``batch_size`` time steps per member, drawn uniformly with replacement."""
        indices = [torch.randint(self.size, (batch_size,), generator=generator, device=self.device)
                   for generator in self.generators]
        indices = indices[0].unsqueeze(0) if len(indices) == 1 else torch.stack(indices)  # no copy for one
        return self.windows(indices)

    def windows(self, indices: torch.Tensor | np.ndarray) -> WindowBatch:
        """The batch for given flat step indices (K, B)."""
        indices = torch.as_tensor(indices, device=self.device, dtype=torch.int64)
        start = self.episode_start[indices].unsqueeze(-1)  # (K, B, 1)
        last = self.bootstrap_last.gather(1, indices)  # (K, B)
        # history: observations t-H+1 .. t; bootstrap: observations t+k-H+1 .. t+k-1, then
        # next_observations[t+k-1] (row N + t+k-1 of the table).
        history_rows = indices.unsqueeze(-1) + self.offsets
        bootstrap_rows = (last + 1).unsqueeze(-1) + self.offsets
        rows = torch.cat([history_rows, bootstrap_rows], dim=-1)  # (K, B, 2H)
        mask = rows >= start
        mask[..., -1] = True
        rows[..., -1] = last + self.size
        rows = torch.where(mask, rows, self.padding_row)
        windows = self.table[rows]  # (K, B, 2H, Do)
        h = self.history_len
        return WindowBatch(
            history=windows[:, :, :h], history_mask=mask[..., :h],
            actions=self.actions[indices], n_step_return=self.n_step_return.gather(1, indices),
            bootstrap_history=windows[:, :, h:], bootstrap_mask=mask[..., h:],
            bootstrap_discount=self.bootstrap_discount.gather(1, indices),
            indices=indices, episode_index=self.episode_index[indices],
        )
