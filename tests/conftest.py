"""Tiny datasets written by the tests themselves."""

from __future__ import annotations

import numpy as np
import pytest

from trajdiff.data import EpisodeDataset


def make_arrays(lengths: list[int], ends: list[str], observation_dim: int = 3, action_dim: int = 2,
                seed: int = 0) -> dict[str, np.ndarray]:
    """D4RL-style arrays with episodes of ``lengths`` ending in 'terminal' or 'timeout'.

    Observation row i is (i, i, ...) + noise-free, so tests can read indices off the values;
    next_observations[i] = observations[i] + 0.5 marks the stored next state apart.
    """
    size = sum(lengths)
    rng = np.random.default_rng(seed)
    observations = np.repeat(np.arange(size, dtype=np.float32)[:, None], observation_dim, axis=1)
    terminals = np.zeros(size, bool)
    timeouts = np.zeros(size, bool)
    position = 0
    for length, end in zip(lengths, ends):
        position += length
        (terminals if end == "terminal" else timeouts)[position - 1] = True
    return {
        "observations": observations,
        "next_observations": observations + 0.5,
        "actions": rng.uniform(-1, 1, (size, action_dim)).astype(np.float32),
        "rewards": rng.uniform(0, 1, size).astype(np.float32),
        "terminals": terminals,
        "timeouts": timeouts,
    }


@pytest.fixture
def small_dataset() -> EpisodeDataset:
    """Episodes of 4 (terminal), 1 (timeout), 6 (timeout), 3 (terminal) steps."""
    return EpisodeDataset.from_arrays(make_arrays([4, 1, 6, 3], ["terminal", "timeout", "timeout", "terminal"]))


@pytest.fixture(scope="session")
def hopper_file(tmp_path_factory):
    """A real Hopper-v5 dataset of about 600 uniformly random steps, in the D4RL layout."""
    from trajdiff.collect.datasets import rollouts
    from trajdiff.data import write_d4rl_hdf5

    arrays, _ = rollouts("Hopper-v5", None, 600, seed=0, num_envs=4)
    arrays.pop("qpos"), arrays.pop("qvel")
    path = tmp_path_factory.mktemp("data") / "hopper-random.hdf5"
    write_d4rl_hdf5(path, EpisodeDataset.from_arrays(arrays, metadata={"env_id": "Hopper-v5"}))
    return path


SLOW_MODULES = {"test_train", "test_faults", "test_bench", "test_d3rlpy_train", "test_throughput",
                "test_member_layers", "test_datasets", "test_gpu_check"}
"""Test modules that step MuJoCo, start processes or train for real: `pytest -m "not slow"` leaves them out."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or "hopper_file" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
