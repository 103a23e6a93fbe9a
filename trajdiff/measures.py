"""What an evaluation measures beyond the return: the critic's accuracy and how much the actions change.

Q accuracy. At every step of an evaluation episode the agent's critic values the action it takes
(``select_actions`` returns min-Q of the chosen action; with action chunks, at each chunk's first step, the
chunk). The return actually obtained from that step,
G_t = r_t + gamma r_{t+1} + ..., is its Monte-Carlo target. After a terminal nothing follows, so G_t is
exact. An episode cut by the time limit goes on in the critic's eyes (trajdiff bootstraps through
truncations), so the G_t of its last steps miss a tail of weight gamma^(steps left); states whose missing
tail weighs more than ``tail_weight`` (gamma^k > 0.01: the last 458 steps at gamma 0.99) are left out.
Reported: the mean of Q - G (bias) and the Pearson correlation of Q and G across the states kept.

Action change. The mean squared change of the action between consecutive steps of an episode, over every
pair of steps and every action dimension: how smooth, or temporally consistent, the policy's control is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PROGRESS_COLUMNS = {"q_bias": "eval_q_bias", "q_correlation": "eval_q_correlation", "q_states": "eval_q_states",
                    "action_change": "eval_action_change"}
"""What :meth:`EpisodeMeasures.summary` reports, each with its progress.csv column."""

TAIL_WEIGHT = 0.01
"""Largest weight gamma^k that the unseen rest of a time-limited episode may have for a state to be kept."""


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """G_t = sum_{i >= t} discount^(i - t) r_i within one episode (nothing after its last step). (L,) -> (L,)."""
    returns = np.empty(len(rewards))
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + discount * following
        returns[t] = following
    return returns


def states_with_known_returns(length: int, terminated: bool, discount: float, tail_weight: float) -> int:
    """How many of an episode's first states have a return known to within ``tail_weight``: all after a
    terminal; after a time-limit cut, those t with discount^(length - t) <= tail_weight (none at discount 1)."""
    if terminated:
        return length
    if discount >= 1.0:
        return 0
    steps_needed = math.ceil(math.log(tail_weight) / math.log(discount))  # smallest k with discount^k <= weight
    return max(0, length - steps_needed + 1)


@dataclass
class EpisodeMeasures:
    """Running sums of one member's measures over its evaluation episodes."""

    discount: float
    tail_weight: float = TAIL_WEIGHT
    squared_change: float = 0.0
    changes: int = 0
    values: list[np.ndarray] = field(default_factory=list)
    returns: list[np.ndarray] = field(default_factory=list)

    def add(self, actions: np.ndarray, rewards: np.ndarray, values: np.ndarray | None, terminated: bool) -> None:
        """One finished episode: actions (L, Da), rewards (L,), the critic's values of the actions (L,) or None
        (NaN at the steps it did not value: inside an action chunk)."""
        if len(actions) > 1:
            self.squared_change += float(np.square(np.diff(actions, axis=0)).mean(axis=1).sum())
            self.changes += len(actions) - 1
        if values is not None:
            kept = states_with_known_returns(len(rewards), terminated, self.discount, self.tail_weight)
            values, returns = values[:kept], discounted_returns(rewards, self.discount)[:kept]
            valued = np.isfinite(values)
            self.values.append(values[valued])
            self.returns.append(returns[valued])

    def summary(self) -> dict[str, float]:
        """action_change; q_bias, q_correlation (NaN without a critic, or too few states) and q_states."""
        values = np.concatenate(self.values) if self.values else np.zeros(0)
        returns = np.concatenate(self.returns) if self.returns else np.zeros(0)
        bias = float((values - returns).mean()) if len(values) else math.nan
        correlation = math.nan
        if len(values) > 1 and values.std() > 0 and returns.std() > 0:
            correlation = float(np.corrcoef(values, returns)[0, 1])
        return {"action_change": self.squared_change / self.changes if self.changes else math.nan,
                "q_bias": bias, "q_correlation": correlation, "q_states": len(values)}
