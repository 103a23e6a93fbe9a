import pytest

from trajdiff.data import default_environment, environment_family, normalized_score
from trajdiff.data.registry import d4rl_file_name


def test_normalized_score_reference_points():
    assert normalized_score("Hopper-v5", -20.272305) == pytest.approx(0.0)
    assert normalized_score("hopper-medium-v2", 3234.3) == pytest.approx(100.0)
    assert normalized_score("walker2d", (1.629008 + 4592.3) / 2) == pytest.approx(50.0)
    assert normalized_score("HalfCheetah-v4", 12135.0) == pytest.approx(100.0)


@pytest.mark.parametrize(("name", "family", "env"), [
    ("hopper-medium-v2", "hopper", "Hopper-v4"),
    ("halfcheetah-medium-expert-v2", "halfcheetah", "HalfCheetah-v4"),
    ("mujoco/walker2d/expert-v0", "walker2d", "Walker2d-v5"),
    ("runs/hopper-medium.hdf5", "hopper", "Hopper-v5"),
    ("pendulum.hdf5", None, None),
])
def test_names_to_families_and_environments(name, family, env):
    assert environment_family(name) == family
    assert default_environment(name) == env


def test_d4rl_file_names():
    assert d4rl_file_name("hopper-medium-replay-v2") == "hopper_medium_replay-v2.hdf5"
