import h5py
import numpy as np
import pytest

from tests.conftest import make_arrays
from trajdiff.cli import main
from trajdiff.data import EpisodeDataset, load_dataset, read_minari, write_d4rl_hdf5, write_minari
from trajdiff.errors import TrajdiffError

ARRAY_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations",
              "episode_starts", "episode_ends")


def write_raw(path, arrays, **extra):
    with h5py.File(path, "w") as handle:
        for key, value in {**arrays, **extra}.items():
            handle.create_dataset(key, data=value)


def test_d4rl_round_trip(tmp_path, small_dataset):
    dataset = EpisodeDataset.from_arrays(
        {key: getattr(small_dataset, key) for key in ARRAY_KEYS[:6]},
        metadata={"env_id": "Hopper-v5"}, episode_metadata={"episode_source": np.array([0, 0, 1, 1])},
    )
    path = tmp_path / "data.hdf5"
    write_d4rl_hdf5(path, dataset, infos={"qpos": np.zeros((dataset.num_transitions, 6))})
    loaded = load_dataset(path)
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(dataset, key))
    assert loaded.env_id == "Hopper-v5"
    np.testing.assert_array_equal(loaded.episode_metadata["episode_source"], [0, 0, 1, 1])


def test_d4rl_file_with_float64_and_policy_group(tmp_path):
    """D4RL's medium-replay stores float64 observations; medium/expert add metadata/policy/*."""
    arrays = make_arrays([3, 2], ["timeout", "terminal"])
    arrays["observations"] = arrays["observations"].astype(np.float64)
    path = tmp_path / "hopper_medium_replay-v2.hdf5"
    write_raw(path, arrays, **{"metadata/policy/fc0/weight": np.zeros((4, 4)), "metadata/algorithm": "SAC",
                               "infos/qpos": np.zeros((5, 6))})
    loaded = load_dataset(path)
    assert loaded.observations.dtype == np.float32 and loaded.num_episodes == 2
    assert loaded.metadata["algorithm"] == "SAC"


def test_d4rl_name_resolves_under_dataset_dir(tmp_path, monkeypatch):
    """A file under a D4RL name is read when it is the published file (here: its checksum stands in for D4RL's),
    and refused in one line otherwise; by its path it reads as any file."""
    from trajdiff.data import registry

    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))
    path = tmp_path / "hopper_medium-v2.hdf5"
    write_raw(path, make_arrays([4], ["terminal"]))
    with pytest.raises(TrajdiffError, match="is not D4RL's hopper-medium-v2"):
        load_dataset("hopper-medium-v2")
    assert load_dataset(path).num_transitions == 4
    monkeypatch.setitem(registry.D4RL_SHA256, "hopper_medium-v2.hdf5", registry.file_sha256(path))
    assert load_dataset("hopper-medium-v2").num_transitions == 4


def test_missing_next_observations_are_derived_inside_episodes():
    arrays = make_arrays([3, 2], ["timeout", "terminal"])
    del arrays["next_observations"]
    dataset = EpisodeDataset.from_arrays(arrays)
    # inside episodes the next row; at each episode's last step a copy of its own observation
    np.testing.assert_array_equal(dataset.next_observations[:, 0], [1, 2, 2, 4, 4])


def test_unmarked_end_of_data_is_a_timeout():
    arrays = make_arrays([3, 2], ["timeout", "timeout"])
    arrays["timeouts"][-1] = False
    dataset = EpisodeDataset.from_arrays(arrays)
    np.testing.assert_array_equal(dataset.episode_ends, [3, 5])
    assert dataset.timeouts[-1] and not dataset.terminals[-1]


def test_minari_round_trip(tmp_path, monkeypatch, small_dataset):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    arrays = make_arrays([5, 3, 4], ["timeout", "terminal", "timeout"], observation_dim=11, action_dim=3)
    # Minari keeps T+1 observations per episode: next states must continue the episode
    arrays["next_observations"] = arrays["observations"] + 1
    dataset = EpisodeDataset.from_arrays(arrays, metadata={"env_id": "Hopper-v5"})
    write_minari(dataset, "trajdiff/test/tiny-v0", "Hopper-v5")
    loaded = read_minari("trajdiff/test/tiny-v0", download=False)
    for key in ARRAY_KEYS:
        np.testing.assert_allclose(getattr(loaded, key), getattr(dataset, key))
    assert loaded.env_id == "Hopper-v5"
    assert load_dataset("trajdiff/test/tiny-v0").num_transitions == 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("rewards"), "missing required key(s): rewards"),
        (lambda a: a.update(actions=a["actions"][:-1]), "length mismatch"),
        (lambda a: a["observations"].__setitem__((2, 1), np.nan), "observations holds NaN or inf (first at row 2)"),
        (lambda a: a["rewards"].__setitem__(4, np.inf), "rewards holds NaN or inf"),
        (lambda a: [a.update({k: v[:0]}) for k, v in list(a.items())], "empty"),
        (lambda a: a.update(observations=np.zeros((5, 2, 2))), "must be 2-D"),
    ],
)
def test_validation_errors(tmp_path, capsys, change, message):
    arrays = make_arrays([3, 2], ["timeout", "terminal"])
    change(arrays)
    path = tmp_path / "bad.hdf5"
    write_raw(path, arrays)
    with pytest.raises(TrajdiffError, match="bad.hdf5: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "info", str(path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("trajdiff: error:") and "\n" not in error


def test_not_hdf5_and_unknown_sources(tmp_path):
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_text("not hdf5")
    with pytest.raises(TrajdiffError, match="not a readable hdf5 file"):
        load_dataset(garbage)
    with pytest.raises(TrajdiffError, match="no dataset at"):
        load_dataset(tmp_path / "missing.hdf5")
    with pytest.raises(TrajdiffError, match="is a folder"):
        load_dataset(tmp_path)


def test_d4rl_name_offline_error_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path))

    def refuse(url, target):
        raise OSError("network unreachable")

    monkeypatch.setattr("trajdiff.data.registry._download", refuse)
    with pytest.raises(TrajdiffError, match=f"save it as {tmp_path}/walker2d_medium_expert-v2.hdf5"):
        load_dataset("walker2d-medium-expert-v2")


def test_environment_mismatch_is_clear(small_dataset):
    with pytest.raises(TrajdiffError, match="observations of size 3 .* Hopper-v5 has 11"):
        small_dataset.check_environment(11, 3, "Hopper-v5")


def test_actions_beyond_the_environment_bounds_are_refused():
    arrays = make_arrays([3, 2], ["timeout", "terminal"])
    arrays["actions"] = np.full((5, 3), 0.5, np.float32)
    dataset = EpisodeDataset.from_arrays(arrays)
    dataset.check_environment(dataset.observation_dim, 3, "Hopper-v5", max_action=1.0)
    arrays["actions"][2, 1] = -5.0
    with pytest.raises(TrajdiffError, match=r"actions up to 5 in size, but Hopper-v5 accepts actions in \[-1, 1\]"):
        EpisodeDataset.from_arrays(arrays).check_environment(dataset.observation_dim, 3, "Hopper-v5", max_action=1.0)


def test_episode_metadata_length_checked():
    with pytest.raises(TrajdiffError, match="per-episode metadata 'episode_source' has 1 entries for 2"):
        EpisodeDataset.from_arrays(make_arrays([3, 2], ["timeout", "terminal"]),
                                   episode_metadata={"episode_source": np.array([1])})
