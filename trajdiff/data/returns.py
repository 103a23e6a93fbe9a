"""Pure multi-step target maths over flat episode arrays (tested against the obvious loops)."""

from __future__ import annotations

import numpy as np


def bootstrap_targets(
    rewards: np.ndarray,
    terminals: np.ndarray,
    episode_ends: np.ndarray,
    episode_lengths: np.ndarray,
    n_step: int,
    discount: float,
    td_lambda: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The critic's target at every step t as a reward part and weights on the values of the next n states.

    For a step t of an episode ending (exclusively) at ``end``, k = min(n_step, end - t) steps count, never
    crossing into the next episode. The truncated lambda-return (Peng's Q(lambda) cut at n steps),
    y_t = r_t + gamma [(1 - lambda) V(s_{t+1}) + lambda y_{t+1}] with y_{t+k} = V(s_{t+k}), unrolls to
        y_t    = reward[t] + sum_{j=1..k} weight[t, j-1] * V(s_{t+j})
        reward[t]         = sum_{i<k} (gamma lambda)^i r_{t+i}
        weight[t, j-1]    = gamma^j lambda^(j-1) (1 - lambda)  for j < k,
                            gamma^k lambda^(k-1)                for j = k (0 if the episode terminates there),
                            0                                   for j > k
        bootstrap_last[t, j-1] = t + min(j, k) - 1  (s_{t+j} is next_observations of that step)
    so a terminal stops bootstrapping, and a time-limit cut (or the data's end) after k < n steps bootstraps in
    full from the state where the episode was cut. lambda = 1 is the n-step return, y = sum_{i<k} gamma^i r_{t+i}
    + gamma^k V(s_{t+k}), all its weight on the last state (:func:`last_state`); n_step 1 is the one-step target
    whatever lambda.

    Shapes: rewards, terminals (N,); episode_ends, episode_lengths (E,) -> reward (N,) float32, bootstrap_last
    (N, n_step) int64, weight (N, n_step) float32.
    """
    size = len(rewards)
    steps = np.arange(size, dtype=np.int64)
    end = np.repeat(episode_ends, episode_lengths)
    window = np.minimum(n_step, end - steps)
    reward = np.zeros(size, dtype=np.float64)
    for offset in range(n_step):  # a loop over the n_step offsets, vectorised over all N steps
        inside = offset < window
        reward += np.where(inside, (discount * td_lambda)**offset * rewards[np.minimum(steps + offset, size - 1)],
                           0.0)
    after = np.arange(1, n_step + 1)  # j
    bootstrap_last = steps[:, None] + np.minimum(after, window[:, None]) - 1
    weight = discount**after * td_lambda ** (after - 1.0)
    weight = np.where(after < window[:, None], weight * (1.0 - td_lambda), weight)
    ends_on_terminal = (window == end - steps) & terminals[steps + window - 1]
    weight = np.where((after > window[:, None]) | ((after == window[:, None]) & ends_on_terminal[:, None]), 0.0,
                      weight)
    return reward.astype(np.float32), bootstrap_last, weight.astype(np.float32)


def last_state(bootstrap_last: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The n-step form of :func:`bootstrap_targets` at lambda 1: only the last state's column (where all the weight
    lies), (N, 1) each, so that the target evaluates one next state instead of n."""
    column = (bootstrap_last[:, -1:] - bootstrap_last[:, :1])  # k - 1
    return bootstrap_last[:, -1:], np.take_along_axis(weight, column, axis=1)


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
