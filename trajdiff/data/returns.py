"""Pure n-step return maths over flat episode arrays (tested against the obvious loop)."""

from __future__ import annotations

import numpy as np


def n_step_targets(
    rewards: np.ndarray,
    terminals: np.ndarray,
    episode_ends: np.ndarray,
    episode_lengths: np.ndarray,
    n_step: int,
    discount: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N-step returns, the step each bootstrap follows, and the bootstrap discount, for every t.

    For a time step t of an episode ending (exclusively) at ``end``, the window holds
    k = min(n_step, end - t) steps, never crossing into the next episode. Then
        n_step_return[t]      = sum_{i<k} discount^i * rewards[t + i]
        bootstrap_last[t]     = t + k - 1   (the bootstrap state is next_observations[t + k - 1])
        bootstrap_discount[t] = 0 if the window ends on the episode's terminal step, else discount^k
    so a terminal stops bootstrapping and a timeout (or the data's end) bootstraps from the stored
    next observation after k < n_step steps.

    Shapes: rewards, terminals (N,); episode_ends, episode_lengths (E,) -> three (N,) arrays
    (float32, int64, float32).
    """
    size = len(rewards)
    steps = np.arange(size, dtype=np.int64)
    end = np.repeat(episode_ends, episode_lengths)
    window = np.minimum(n_step, end - steps)
    returns = np.zeros(size, dtype=np.float64)
    for offset in range(n_step):  # a loop over the n_step offsets, vectorised over all N steps
        inside = offset < window
        returns += np.where(inside, discount**offset * rewards[np.minimum(steps + offset, size - 1)], 0.0)
    bootstrap_last = steps + window - 1
    ends_on_terminal = (bootstrap_last == end - 1) & terminals[bootstrap_last]
    bootstrap_discount = np.where(ends_on_terminal, 0.0, discount ** window.astype(np.float64))
    return returns.astype(np.float32), bootstrap_last, bootstrap_discount.astype(np.float32)


def discounted_returns_to_go(
    rewards: np.ndarray, episode_ends: np.ndarray, episode_lengths: np.ndarray, discount: float
) -> np.ndarray:
    """Each step's discounted return to the end of its stored episode: the behaviour policy's value there,
    a yardstick for a critic's Q of the data's own actions (``q_mean`` in progress.csv) while the learned
    policy scores near the data's level.

        returns_to_go[t] = sum_{t <= i < end} discount^(i - t) * rewards[i]

    Nothing is bootstrapped past the episode's last stored step, so on an episode cut by a time limit
    the figure falls short of the value there. The recursion runs backwards from every episode's end at
    once (a loop over the longest episode's steps, vectorised over episodes), never through powers of
    1 / discount, which overflow on long episodes.

    Shapes: rewards (N,); episode_ends, episode_lengths (E,) -> (N,) float64.
    """
    returns_to_go = rewards.astype(np.float64)
    for offset in range(1, int(episode_lengths.max(initial=0))):
        longer = episode_lengths > offset
        step = episode_ends[longer] - 1 - offset
        returns_to_go[step] += discount * returns_to_go[step + 1]
    return returns_to_go
