"""Partial observability: the same observation entries in the data and in the environment."""

import numpy as np
import pytest

from tests.conftest import make_arrays
from trajdiff.data import EpisodeDataset
from trajdiff.envs import make_environment, make_vector_environment, observed_columns
from trajdiff.errors import TrajdiffError


def test_observed_columns_by_family():
    assert observed_columns("Hopper-v5", "positions") == slice(None, 5)
    assert observed_columns("hopper-medium-v2", "velocities") == slice(5, None)  # D4RL names: the same layout
    assert observed_columns("walker2d-medium-expert.hdf5", "positions") == slice(None, 8)
    assert observed_columns("Pendulum-v1", "all") == slice(None)
    with pytest.raises(TrajdiffError, match="Pendulum-v1's is not known"):
        observed_columns("Pendulum-v1", "positions")


def test_dataset_and_environment_see_the_same_entries():
    arrays = make_arrays([4, 3], ["terminal", "timeout"], observation_dim=11)
    arrays["observations"] = np.arange(7 * 11, dtype=np.float32).reshape(7, 11)
    dataset = EpisodeDataset.from_arrays(arrays).with_observation_columns(observed_columns("Hopper-v5", "velocities"))
    np.testing.assert_array_equal(dataset.observations[0], np.arange(5, 11))
    assert dataset.next_observations.shape == (7, 6)
    full, cut = make_environment("Hopper-v5"), make_environment("Hopper-v5", "velocities")
    observation, _ = full.reset(seed=3)
    np.testing.assert_array_equal(cut.reset(seed=3)[0], observation[5:])
    action = full.action_space.sample()
    np.testing.assert_array_equal(cut.step(action)[0], full.step(action)[0][5:])
    vector = make_vector_environment("Hopper-v5", 2, "positions")
    assert vector.reset(seed=0)[0].shape == (2, 5)
