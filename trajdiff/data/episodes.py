"""EpisodeDataset: a whole offline dataset in memory, as flat arrays plus episode boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from trajdiff.errors import TrajdiffError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
"""The arrays a D4RL-format file must hold."""
ARRAY_KEYS = (*REQUIRED_KEYS, "next_observations")
"""The per-transition arrays an EpisodeDataset holds (next_observations made from observations when absent)."""


@dataclass(frozen=True)
class EpisodeDataset:
    """Transitions in flat, contiguous, episode-ordered arrays.

    Shapes: N transitions, E episodes, Do observation size, Da action size.
    observations, next_observations (N, Do) float32; actions (N, Da) float32; rewards (N,) float32;
    terminals, timeouts (N,) bool; episode_starts, episode_ends (E,) int64, ``episode_ends``
    exclusive. An episode ends, as in D4RL, at a terminal (a true end: no bootstrap) or a timeout
    (a truncation: bootstrapping from ``next_observations`` is allowed); the last row of the data
    always ends an episode, and is marked a timeout if the file marks neither.
    ``episode_metadata`` holds per-episode arrays of length E (e.g. ``episode_source``);
    ``metadata`` holds dataset-level facts (e.g. ``env_id``).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    next_observations: np.ndarray
    episode_starts: np.ndarray
    episode_ends: np.ndarray
    name: str = "dataset"
    metadata: dict[str, Any] = field(default_factory=dict)
    episode_metadata: dict[str, np.ndarray] = field(default_factory=dict)

    def digest(self) -> str:
        """sha256 of the transitions' content (every array above, in order), whatever file or format held them."""
        import hashlib

        content = hashlib.sha256()
        for array in (self.observations, self.actions, self.rewards, self.terminals, self.timeouts,
                      self.next_observations):
            content.update(str(array.shape).encode())
            content.update(np.ascontiguousarray(array).tobytes())
        return content.hexdigest()

    def with_observation_columns(self, columns: slice) -> EpisodeDataset:
        """The dataset seeing only these observation entries (in observations and next_observations alike)."""
        return replace(self, observations=np.ascontiguousarray(self.observations[:, columns]),
                       next_observations=np.ascontiguousarray(self.next_observations[:, columns]))

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        name: str = "dataset",
        metadata: dict[str, Any] | None = None,
        episode_metadata: dict[str, np.ndarray] | None = None,
    ) -> EpisodeDataset:
        """Validate D4RL-style arrays and split them into episodes.

        ``arrays`` needs observations, actions, rewards, terminals and timeouts; next_observations is
        optional. Without it, next_observations[i] = observations[i + 1] inside an episode, and at
        each episode's last step it is a copy of observations[i]: the true next state is unknown
        there. That stand-in never matters after a terminal (no bootstrap), and after a timeout it
        makes the last step bootstrap from its own state, a small bias; datasets with stored
        next_observations (D4RL v2, Minari, ``trajdiff collect``) do not have it.
        Every problem found raises a one-line :class:`TrajdiffError` naming the dataset.
        """
        observations, actions, rewards, terminals, timeouts, next_observations = checked_arrays(arrays, name)
        timeouts = timeouts & ~terminals  # a step that is both ends for real: terminal wins
        timeouts[-1] |= not terminals[-1]  # the data's end truncates the last episode
        episode_ends = np.flatnonzero(terminals | timeouts).astype(np.int64) + 1
        episode_starts = np.concatenate([[0], episode_ends[:-1]]).astype(np.int64)
        if next_observations is None:
            next_observations = np.empty_like(observations)
            next_observations[:-1] = observations[1:]
            next_observations[episode_ends - 1] = observations[episode_ends - 1]
        episode_metadata = dict(episode_metadata or {})
        for key, values in episode_metadata.items():
            if len(values) != len(episode_starts):
                raise TrajdiffError(
                    f"{name}: per-episode metadata {key!r} has {len(values)} entries "
                    f"for {len(episode_starts)} episodes"
                )
        return cls(observations, actions, rewards, terminals, timeouts, next_observations,
                   episode_starts, episode_ends, name, dict(metadata or {}), episode_metadata)

    @property
    def num_transitions(self) -> int:
        return len(self.observations)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    @property
    def observation_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]

    @property
    def episode_lengths(self) -> np.ndarray:
        """(E,) int64 steps per episode."""
        return self.episode_ends - self.episode_starts

    @property
    def episode_returns(self) -> np.ndarray:
        """(E,) float64 undiscounted return of each episode."""
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)

    @property
    def episode_index(self) -> np.ndarray:
        """(N,) int64 episode number of each transition."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths)

    @property
    def env_id(self) -> str | None:
        """The evaluation environment the data's own metadata names, if any."""
        env_id = self.metadata.get("env_id")
        return str(env_id) if env_id else None

    def check_environment(self, observation_dim: int, action_dim: int, env_id: str,
                          max_action: float = float("inf")) -> None:
        """Raise a one-line error when the data cannot drive ``env_id``: other observation/action sizes, or
        actions beyond its bounds, which a policy that acts within them cannot represent."""
        if (self.observation_dim, self.action_dim) != (observation_dim, action_dim):
            raise TrajdiffError(
                f"{self.name} has observations of size {self.observation_dim} and actions of size "
                f"{self.action_dim}, but {env_id} has {observation_dim} and {action_dim}: "
                "wrong dataset or wrong --env"
            )
        largest = float(np.abs(self.actions).max()) if len(self.actions) else 0.0
        if largest > max_action * (1 + ACTION_TOLERANCE):
            raise TrajdiffError(
                f"{self.name} has actions up to {largest:.3g} in size, but {env_id} accepts actions in "
                f"[-{max_action:g}, {max_action:g}], where the policy acts: rescale the data's actions to the "
                "environment's bounds, or check --env"
            )


ACTION_TOLERANCE = 1e-3
"""Relative slack on the action bounds: float rounding in recorded files, never a real excursion."""


def checked_arrays(arrays: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, ...]:
    """D4RL-style arrays checked and typed: observations, actions and rewards as finite float32, terminals and
    timeouts as bool, next_observations (None when absent); the first problem found is a one-line error."""
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise TrajdiffError(f"{name}: missing required key(s): {', '.join(missing)}")
    observations = _float_matrix(arrays["observations"], "observations", name)
    actions = _float_matrix(arrays["actions"], "actions", name)
    rewards = _float_matrix(np.asarray(arrays["rewards"]).reshape(-1), "rewards", name).reshape(-1)
    terminals = np.asarray(arrays["terminals"]).reshape(-1).astype(bool)
    timeouts = np.asarray(arrays["timeouts"]).reshape(-1).astype(bool)
    size = len(observations)
    if size == 0:
        raise TrajdiffError(f"{name}: the dataset is empty (0 transitions)")
    lengths = {"actions": len(actions), "rewards": len(rewards), "terminals": len(terminals),
               "timeouts": len(timeouts)}
    next_observations = arrays.get("next_observations")
    if next_observations is not None:
        next_observations = _float_matrix(next_observations, "next_observations", name)
        lengths["next_observations"] = len(next_observations)
        if next_observations.shape[1] != observations.shape[1]:
            raise TrajdiffError(
                f"{name}: next_observations have {next_observations.shape[1]} columns, "
                f"observations {observations.shape[1]}"
            )
    mismatched = {key: length for key, length in lengths.items() if length != size}
    if mismatched:
        details = ", ".join(f"{key} {length}" for key, length in mismatched.items())
        raise TrajdiffError(f"{name}: length mismatch: observations {size} rows but {details}")
    checked = {"observations": observations, "actions": actions, "rewards": rewards}
    if next_observations is not None:
        checked["next_observations"] = next_observations
    for key, values in checked.items():
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise TrajdiffError(f"{name}: {key} holds NaN or inf (first at row {row})")
    return observations, actions, rewards, terminals, timeouts, next_observations


def _float_matrix(values: Any, key: str, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise TrajdiffError(f"{name}: {key} must be 2-D (rows, features), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TrajdiffError(f"{name}: {key} is not real-valued numbers (dtype {array.dtype})")
    return np.ascontiguousarray(array, dtype=np.float32)
