"""TrajectorySampler: vectorised sampling of history windows, action chunks and multi-step targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.returns import bootstrap_targets, last_state
from trajdiff.streams import stream_generator


@dataclass(frozen=True)
class WindowBatch:
    """A batch of training windows for K members, all tensors on the sampler's device.

    Shapes: K members, B batch, H history_len, Do observation size, Da action size, h action_chunk, J the next
    states a target bootstraps from (1 for n-step targets, n_step for lambda-returns).
    history (K, B, H, Do): the H observations ending at the sampled step t, zero-padded before the
        episode's start; history_mask (K, B, H) bool, True on real steps (always True at the end).
    actions (K, B, h * Da): the actions taken at t .. t+h-1, step-major; steps past the episode's stored end
        repeat its last action. action_mask (K, B, h) bool: True on the steps that the episode holds.
    target_reward (K, B): the reward part of the critic's target (trajdiff.data.returns.bootstrap_targets).
    bootstrap_history (K, B, J, H, Do), bootstrap_mask (K, B, J, H): the windows ending at the next states that
        the target values; bootstrap_weight (K, B, J): each one's weight in the target (0 after a terminal).
    indices (K, B) int64 flat step indices; episode_index (K, B) int64 episode of each step.
    """

    history: torch.Tensor
    history_mask: torch.Tensor
    actions: torch.Tensor
    action_mask: torch.Tensor
    target_reward: torch.Tensor
    bootstrap_history: torch.Tensor
    bootstrap_mask: torch.Tensor
    bootstrap_weight: torch.Tensor
    indices: torch.Tensor
    episode_index: torch.Tensor

    @property
    def observations(self) -> torch.Tensor:
        """(K, B, Do) the current state s_t."""
        return self.history[..., -1, :]

    @property
    def bootstrap_observations(self) -> torch.Tensor:
        """(K, B, J, Do) the states the critic bootstraps from (s' alone when n_step is 1)."""
        return self.bootstrap_history[..., -1, :]


class MemberSettings(Protocol):
    """What the sampler reads of each member's algorithm config (trajdiff.agent.AgentConfig has these fields)."""

    history_len: int
    action_chunk: int
    n_step: int
    discount: float
    critic_target: str
    td_lambda: float
    bootstrap_states: int


class TrajectorySampler:
    """Uniform sampling over every time step of every episode, as history windows, for K members.

    All arrays (observations, target rewards, bootstrap indices and weights) are computed once
    and kept on ``device``; a batch is then a handful of gathers with no Python loop over its
    elements and no host/device copy. Members share the observations, the history length, the action chunk and
    the kind of critic target, and may differ in n_step, discount and td_lambda (their targets are (K, N)
    tables); member k draws its steps from the windows stream of its seed seeds[k] (trajdiff.streams), so its
    batches do not depend on the other members. With history_len 1, n_step 1 and action_chunk 1 a member's
    batch is exactly the plain transition batch (s, a, r, s', gamma * not_done).

    Targets (trajdiff.data.returns): n-step returns, bootstrapping from the state after the n steps; or, with
    critic_target "lambda", truncated lambda-returns, which value each of the n next states. An action chunk
    h > 1 gives each step's chunk of h logged actions (its members' n_step is h: the target backs up exactly the
    logged chunk).
    """

    def __init__(self, dataset: EpisodeDataset, members: Sequence[MemberSettings], seeds: Sequence[int],
                 device: str | torch.device = "cpu") -> None:
        if len(members) != len(seeds) or not seeds:
            raise ValueError("one member's settings and one seed per member")
        first = members[0]
        self.history_len, self.action_chunk = first.history_len, first.action_chunk
        self.device = torch.device(device)
        self.size = dataset.num_transitions
        lambda_returns = first.critic_target == "lambda"
        states = max(member.bootstrap_states for member in members)
        targets = [self._member_targets(dataset, member.n_step, member.discount,
                                        member.td_lambda if lambda_returns else None, states) for member in members]
        # One lookup table for both windows: observations in rows [0, N), next_observations in
        # [N, 2N) and a zero row at 2N that every padded position points to.
        table = np.concatenate([dataset.observations, dataset.next_observations,
                                np.zeros((1, dataset.observation_dim), np.float32)])
        self.padding_row = 2 * self.size

        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

        self.table = to_device(table)
        self.actions = to_device(dataset.actions)
        self.target_reward = to_device(np.stack([reward for reward, _, _ in targets]))  # (K, N)
        self.bootstrap_last = to_device(np.stack([last for _, last, _ in targets]))  # (K, N, J)
        self.bootstrap_weight = to_device(np.stack([weight for _, _, weight in targets]))  # (K, N, J)
        self.episode_index = to_device(dataset.episode_index)
        self.episode_start = to_device(np.repeat(dataset.episode_starts, dataset.episode_lengths))
        self.episode_last = to_device(np.repeat(dataset.episode_ends - 1, dataset.episode_lengths))
        # Offsets of a window's observations relative to its last observation: (-(H-1), ..., 0).
        self.offsets = torch.arange(-(self.history_len - 1), 1, device=self.device)
        self.chunk_offsets = torch.arange(self.action_chunk, device=self.device)
        self.generators = [stream_generator(seed, "windows", device=self.device) for seed in seeds]

    @staticmethod
    def _member_targets(dataset: EpisodeDataset, n_step: int, discount: float, td_lambda: float | None,
                        states: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One member's target tables: (N,) rewards, (N, J) bootstrap steps and weights, J = 1 for n-step
        targets, else ``states`` (the members' largest n_step; columns past the member's own n weigh 0)."""
        reward, last, weight = bootstrap_targets(dataset.rewards, dataset.terminals, dataset.episode_ends,
                                                 dataset.episode_lengths, n_step, discount,
                                                 1.0 if td_lambda is None else td_lambda)
        if td_lambda is None:
            return reward, *last_state(last, weight)
        padding = ((0, 0), (0, states - n_step))
        return reward, np.pad(last, padding, mode="edge"), np.pad(weight, padding)

    def draw(self, batch_size: int) -> WindowBatch:
        """Windows at ``batch_size`` time steps per member, drawn uniformly with replacement."""
        indices = [torch.randint(self.size, (batch_size,), generator=generator, device=self.device)
                   for generator in self.generators]
        indices = indices[0].unsqueeze(0) if len(indices) == 1 else torch.stack(indices)  # no copy for one
        return self.windows(indices)

    def windows(self, indices: torch.Tensor | np.ndarray) -> WindowBatch:
        """The batch for given flat step indices (K, B)."""
        indices = torch.as_tensor(indices, device=self.device, dtype=torch.int64)
        member = torch.arange(indices.shape[0], device=self.device)[:, None]
        start = self.episode_start[indices][..., None, None]  # (K, B, 1, 1)
        last = self.bootstrap_last[member, indices]  # (K, B, J)
        # history: observations t-H+1 .. t; each bootstrap window j: observations l-H+2 .. l, then
        # next_observations[l] (row N + l of the table), l = last[..., j].
        history_rows = indices[..., None] + self.offsets  # (K, B, H)
        bootstrap_rows = (last + 1)[..., None] + self.offsets  # (K, B, J, H)
        rows = torch.cat([history_rows[:, :, None], bootstrap_rows], dim=2)  # (K, B, 1 + J, H)
        mask = rows >= start
        mask[..., -1] = True
        rows[:, :, 1:, -1] = last + self.size
        rows = torch.where(mask, rows, self.padding_row)
        windows = self.table[rows]  # (K, B, 1 + J, H, Do)
        return WindowBatch(
            history=windows[:, :, 0], history_mask=mask[:, :, 0], **self.chunks(indices),
            target_reward=self.target_reward.gather(1, indices),
            bootstrap_history=windows[:, :, 1:], bootstrap_mask=mask[:, :, 1:],
            bootstrap_weight=self.bootstrap_weight[member, indices],
            indices=indices, episode_index=self.episode_index[indices],
        )

    def chunks(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """actions (K, B, h * Da): the logged actions at t .. t+h-1 (the episode's last one repeated past its
        end) and action_mask (K, B, h), True where the episode holds the step."""
        steps = indices[..., None] + self.chunk_offsets  # (K, B, h)
        last = self.episode_last[indices][..., None]
        actions = self.actions[torch.minimum(steps, last)]  # (K, B, h, Da)
        return {"actions": actions.flatten(2), "action_mask": steps <= last}
