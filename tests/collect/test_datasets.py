"""trajdiff collect: D4RL protocol on tiny sizes (a few thousand steps)."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from trajdiff.cli import main
from trajdiff.collect.datasets import BehaviorRun, build_dataset, rollouts
from trajdiff.commands.collect import TrainBehaviorConfig, train_behavior
from trajdiff.data import EpisodeDataset, load_dataset, read_minari, write_minari
from trajdiff.errors import TrajdiffError


@pytest.fixture(scope="module")
def behavior_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("behavior") / "hopper"
    sb3_folders = set(Path(tempfile.gettempdir()).glob("SB3-*"))
    train_behavior(TrainBehaviorConfig(out=out, env="Hopper-v5", steps=900, checkpoint_every=300,
                                       learning_starts=300, eval_episodes=2))
    assert set(Path(tempfile.gettempdir()).glob("SB3-*")) == sb3_folders  # no log folder left behind in /tmp
    return out


def test_behavior_run_layout(behavior_run):
    log = json.loads((behavior_run / "log.json").read_text())
    assert [entry["step"] for entry in log] == [300, 600, 900]
    replay = np.load(behavior_run / "replay.npz")
    assert len(replay["rewards"]) == 900  # the final transition is stored too
    assert replay["dones"].sum() >= replay["timeouts"].sum()


def test_a_run_killed_saving_its_replay_continues_from_the_checkpoint_before(tmp_path, monkeypatch):
    """log.json is written last at a checkpoint: a run killed while saving its replay does not list that step, and
    the same command continues from the step before with every transition (a log listing the step over a replay
    without its last transitions would continue on a buffer with a hole)."""
    import trajdiff.commands.collect as collect

    config = TrainBehaviorConfig(out=tmp_path / "hopper", steps=600, checkpoint_every=200, learning_starts=100,
                                 eval_episodes=1)
    save_replay, saves = collect.save_replay, []

    def killed_at_the_second(buffer, path):  # noqa: ANN001 - an SB3 ReplayBuffer
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt
        save_replay(buffer, path)

    monkeypatch.setattr(collect, "save_replay", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        train_behavior(config)
    assert [entry["step"] for entry in json.loads((config.out / "log.json").read_text())] == [200]
    monkeypatch.undo()
    train_behavior(config)
    assert [entry["step"] for entry in json.loads((config.out / "log.json").read_text())] == [200, 400, 600]
    assert [start["at_step"] for start in json.loads((config.out / "run.json").read_text())["starts"]] == [0, 200]
    assert len(np.load(config.out / "replay.npz")["rewards"]) == 600


def test_steps_past_the_last_checkpoint_are_in_the_replay(tmp_path):
    """A run whose steps are not a multiple of --checkpoint-every saves its replay once more at the end: every step
    SAC took, not only those up to the last checkpoint."""
    config = TrainBehaviorConfig(out=tmp_path / "hopper", steps=500, checkpoint_every=200, learning_starts=100,
                                 eval_episodes=1)
    train_behavior(config)
    assert [entry["step"] for entry in json.loads((config.out / "log.json").read_text())] == [200, 400]
    assert len(np.load(config.out / "replay.npz")["rewards"]) == 500


def test_suite_writes_five_loadable_files(behavior_run, tmp_path):
    main(["collect", "suite", "--from", str(behavior_run), "--size", "1500", "--out", str(tmp_path)])
    run = BehaviorRun.open(behavior_run)
    for kind in ("random", "medium", "medium-replay", "expert", "medium-expert"):
        dataset = load_dataset(tmp_path / f"hopper-{kind}.hdf5")
        assert dataset.env_id == "Hopper-v5"
        # recorded per-episode returns equal the sums of the rewards
        np.testing.assert_allclose(dataset.episode_metadata["episode_returns"], dataset.episode_returns, rtol=1e-5)
        if kind != "medium-replay":
            assert 1500 <= dataset.num_transitions < 1500 + 1000 * (2 if kind == "medium-expert" else 1)
    replay = load_dataset(tmp_path / "hopper-medium-replay.hdf5")
    assert replay.num_transitions == run.medium["step"]
    mixed = load_dataset(tmp_path / "hopper-medium-expert.hdf5")
    medium = load_dataset(tmp_path / "hopper-medium.hdf5")
    source = mixed.episode_metadata["episode_source"]
    assert (source[: medium.num_episodes] == 0).all() and (source[medium.num_episodes:] == 1).all()
    expert = load_dataset(tmp_path / "hopper-expert.hdf5")
    np.testing.assert_array_equal(mixed.observations[: medium.num_transitions], medium.observations)
    np.testing.assert_array_equal(mixed.observations[medium.num_transitions:], expert.observations)


def test_medium_and_expert_rules(behavior_run):
    run = BehaviorRun.open(behavior_run)
    returns = {entry["step"]: entry["ret_mean"] for entry in run.log}
    assert run.expert["ret_mean"] == max(returns.values())
    target = run.expert["ret_mean"] / 3
    assert abs(run.medium["ret_mean"] - target) == min(abs(value - target) for value in returns.values())


def test_collected_returns_match_the_policy(behavior_run):
    """The collected episodes' returns match SB3's own stochastic evaluation of the same checkpoint."""
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from trajdiff.collect.behavior import checkpoint_path

    run = BehaviorRun.open(behavior_run)
    dataset, _ = build_dataset(run, "expert", 3000, seed=3)
    returns = dataset.episode_returns
    model = SAC.load(checkpoint_path(behavior_run, int(run.expert["step"])), device="cpu")
    evaluated, _ = evaluate_policy(model, Monitor(gym.make("Hopper-v5")), n_eval_episodes=60,
                                   deterministic=False, return_episode_rewards=True)
    standard_error = np.sqrt(returns.var() / len(returns) + np.var(evaluated) / len(evaluated))
    assert abs(returns.mean() - np.mean(evaluated)) < 4 * standard_error


def test_terminals_only_on_falls_and_timeouts_at_step_1000():
    arrays, _ = rollouts("Hopper-v5", None, 800, seed=0, num_envs=4)
    dataset = EpisodeDataset.from_arrays(arrays)
    fallen = dataset.next_observations[dataset.terminals]
    height, angle = fallen[:, 0], fallen[:, 1]
    unhealthy = (height <= 0.7) | (np.abs(angle) >= 0.2) | (np.abs(fallen[:, 1:]) >= 100).any(axis=1)
    assert dataset.terminals.sum() > 0 and unhealthy.all()
    # Swimmer never falls: every episode is a 1000-step timeout
    arrays, _ = rollouts("Swimmer-v5", None, 2000, seed=0, num_envs=2)
    swimmer = EpisodeDataset.from_arrays(arrays)
    assert not swimmer.terminals.any()
    assert (swimmer.episode_lengths == 1000).all() and swimmer.timeouts[swimmer.episode_ends - 1].all()


def test_round_trip_through_both_loaders(behavior_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    dataset, _ = build_dataset(BehaviorRun.open(behavior_run), "medium", 1000, seed=0)
    write_minari(dataset, "trajdiff/hopper/medium-v0", "Hopper-v5")
    loaded = read_minari("trajdiff/hopper/medium-v0", download=False)
    for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations", "episode_ends"):
        np.testing.assert_allclose(getattr(loaded, key), getattr(dataset, key))


def test_run_dir_without_checkpoints(tmp_path):
    with pytest.raises(TrajdiffError, match="no log.json"):
        BehaviorRun.open(tmp_path)
    (tmp_path / "log.json").write_text(json.dumps([{"step": 100, "ret_mean": 1.0, "ret_std": 0.0, "wall_s": 1}]))
    with pytest.raises(TrajdiffError, match="holds no checkpoints"):
        BehaviorRun.open(tmp_path)


def test_collect_dataset_also_as_minari(behavior_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    out = tmp_path / "random.hdf5"
    main(["collect", "dataset", "--from", str(behavior_run), "--kind", "random", "--size", "300",
          "--out", str(out), "--minari-id", "trajdiff/hopper/random-v0"])
    from_hdf5, from_minari = load_dataset(out), load_dataset("trajdiff/hopper/random-v0")
    for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
        np.testing.assert_allclose(getattr(from_minari, key), getattr(from_hdf5, key))


def test_policy_step_names_the_checkpoint(behavior_run, tmp_path):
    """--policy-step rolls out the named checkpoint; a run trained only that far gives the same dataset."""
    short = tmp_path / "hopper"
    train_behavior(TrainBehaviorConfig(out=short, env="Hopper-v5", steps=600, checkpoint_every=300,
                                       learning_starts=300, eval_episodes=2))
    full, part = BehaviorRun.open(behavior_run), BehaviorRun.open(short)
    evaluated = [[(entry["step"], entry["ret_mean"]) for entry in run.log] for run in (full, part)]
    assert evaluated[0][:2] == evaluated[1]  # the same first two checkpoints
    for kind in ("expert", "medium-replay"):
        from_full, _ = build_dataset(full, kind, 400, seed=0, policy_step=600)
        from_part, _ = build_dataset(part, kind, 400, seed=0, policy_step=600)
        assert from_full.metadata["policy_return"] == full.log[1]["ret_mean"]
        for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
            np.testing.assert_array_equal(getattr(from_part, key), getattr(from_full, key))
    medium, _ = build_dataset(full, "medium", 400, seed=0)
    named, _ = build_dataset(full, "medium", 400, seed=0, policy_step=int(full.medium["step"]))
    np.testing.assert_array_equal(named.actions, medium.actions)
    with pytest.raises(TrajdiffError, match="no checkpoint at step 500 \\(it has 300, 600, 900\\)"):
        build_dataset(full, "medium", 400, seed=0, policy_step=500)
    with pytest.raises(TrajdiffError, match="not of random"):
        build_dataset(full, "random", 400, seed=0, policy_step=300)


def test_size_must_be_positive(behavior_run):
    with pytest.raises(TrajdiffError, match="--size must be at least 1"):
        build_dataset(BehaviorRun.open(behavior_run), "random", 0, seed=0)


def test_mix_labels_each_episode_with_its_source(tmp_path, capsys):
    from tests.conftest import make_arrays
    from trajdiff.cli import main
    from trajdiff.data import EpisodeDataset, load_dataset, write_d4rl_hdf5

    files = []
    for name, lengths in (("low", [3, 3, 3]), ("high", [5, 5])):
        path = tmp_path / f"{name}.hdf5"
        write_d4rl_hdf5(path, EpisodeDataset.from_arrays(make_arrays(lengths, ["terminal"] * len(lengths)),
                                                         metadata={"env_id": "Hopper-v5", "policy": name}))
        files.append(str(path))
    out = tmp_path / "mixed.hdf5"
    main(["collect", "mix", *files, "--names", "low", "high", "--sizes", "4", "100", "--out", str(out)])
    mixed = load_dataset(out)
    # the first whole episodes reaching 4 transitions of low (two of 3 steps), all of high
    assert mixed.episode_lengths.tolist() == [3, 3, 5, 5]
    assert mixed.episode_metadata["episode_source"].tolist() == [0, 0, 1, 1]
    assert mixed.metadata["episode_source_names"] == "low,high" and mixed.metadata["policy"] == "low + high"
    assert "low 2 episodes (6 transitions), high 2 episodes (10 transitions)" in capsys.readouterr().out


def test_collected_files_record_their_behaviour_run(behavior_run, tmp_path, capsys):
    """A collected file carries the behaviour run's command, trainer and evaluation curve; data info shows them
    with the content digest."""
    out = tmp_path / "medium.hdf5"
    main(["collect", "dataset", "--from", str(behavior_run), "--kind", "medium", "--size", "300", "--out", str(out)])
    capsys.readouterr()
    main(["data", "info", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    log = json.loads((behavior_run / "log.json").read_text())
    assert summary["behavior_curve"] == [[entry["step"], round(entry["ret_mean"], 1)] for entry in log]
    record = json.loads((behavior_run / "run.json").read_text())
    assert summary["behavior_command"] == record["starts"][-1]["command"]
    assert summary["behavior_trainer"] == "sb3"
    assert summary["behavior_starts"] == [{"at_step": 0, "cpu": record["starts"][0]["cpu"],
                                           "code_commit": record["starts"][0]["code_commit"]}]
    assert summary["digest"] == load_dataset(out).digest()
    main(["data", "info", str(out)])
    printed = capsys.readouterr().out
    assert f"digest         {summary['digest']}" in printed
    assert f"  starts       step 0 on {record['starts'][0]['cpu']} (code " in printed
    assert "  evaluations  " + ", ".join(f"{entry['step']} {entry['ret_mean']:.0f}" for entry in log) in printed
    assert summary["behavior_command"].startswith(f"trajdiff collect train-behavior --out {behavior_run} ")


def test_sbx_run_continues_only_with_its_trainer(tmp_path, capsys):
    """A run made with --trainer sbx records it; a continuation with the other trainer is refused in one line and
    records no start; a continuation records the step it began at, and datasets load its checkpoints with the
    trainer that made them and record both starts."""
    out = tmp_path / "hopper"
    main(["collect", "train-behavior", "--out", str(out), "--steps", "400", "--checkpoint-every", "200",
          "--learning-starts", "100", "--eval-episodes", "1", "--trainer", "sbx"])
    assert json.loads((out / "run.json").read_text())["trainer"] == "sbx"
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["collect", "train-behavior", "--out", str(out), "--steps", "600", "--checkpoint-every", "200",
              "--learning-starts", "100", "--eval-episodes", "1"])
    assert stopped.value.code == 2
    assert "run with trainer sbx, not sb3" in capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())  # as a start killed before its first checkpoint leaves it
    record["starts"].append({**record["starts"][0], "at_step": 400, "cpu": "killed"})
    (out / "run.json").write_text(json.dumps(record))
    main(["collect", "train-behavior", "--out", str(out), "--steps", "600", "--checkpoint-every", "200",
          "--learning-starts", "100", "--eval-episodes", "1", "--trainer", "sbx"])
    assert [entry["step"] for entry in json.loads((out / "log.json").read_text())] == [200, 400, 600]
    assert len(np.load(out / "replay.npz")["rewards"]) == 600
    starts = json.loads((out / "run.json").read_text())["starts"]
    assert [start["at_step"] for start in starts] == [0, 400] and starts[1]["cpu"] != "killed"
    assert starts[1]["command"].endswith("--steps 600 --checkpoint-every 200 --eval-episodes 1 --learning-starts 100 "
                                         "--seed 0 --trainer sbx") and "jax" in starts[1]["versions"]
    dataset, _ = build_dataset(BehaviorRun.open(out), "expert", 200, seed=0)
    assert dataset.metadata["behavior_trainer"] == "sbx" and dataset.num_transitions >= 200
    assert [start["at_step"] for start in json.loads(dataset.metadata["behavior_starts"])] == [0, 400]
