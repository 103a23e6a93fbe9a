"""End-to-end: training writes its logs and checkpoint, resumes exactly, evaluates from a checkpoint."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import trajdiff
from trajdiff.checkpoint import load_checkpoint
from trajdiff.cli import main
from trajdiff.commands.train_config import TrainConfig, check_members, check_resumable, default_config, member_configs

COMMON = ["--device", "cpu", "--batch-size", "32", "--no-tensorboard"]


def rows(run_dir):
    with (run_dir / "progress.csv").open() as handle:
        return list(csv.DictReader(handle))


def rows_without_timings(run_dir):
    """progress.csv rows less the wall-clock columns, which no two runs share."""
    return [{key: value for key, value in row.items() if key not in ("updates_per_s", "wall_s")}
            for row in rows(run_dir)]


def test_short_run_learns_and_writes_everything(tmp_path, hopper_file, capsys):
    out = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "300", "--eval-every", "150",
          "--eval-episodes", "2", "--out", str(out), "--history-len", "3", "--n-step", "2", *COMMON])
    progress = rows(out)
    assert [int(row["step"]) for row in progress] == [150, 300]
    for column in ("step", "return_mean", "normalized_score", "critic_loss", "bc_loss", "q_loss"):
        assert column in progress[0]
    assert float(progress[1]["bc_loss"]) < float(progress[0]["bc_loss"])
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["history_len"] == 3 and config["env_id"] == "Hopper-v5" and "torch" in config["versions"]
    assert load_checkpoint(out)["step"] == 300
    capsys.readouterr()
    main(["eval", str(out), "--episodes", "3", "--json", "--device", "cpu"])
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 3 and len(report["episode_returns"]) == 3
    for key in ("return_mean", "return_std", "normalized_score_mean"):
        assert isinstance(report[key], float)


def test_stop_at_then_resume_equals_uninterrupted_with_learning_rate_decay(tmp_path, hopper_file, capsys):
    """--stop-at halts a run part way with --updates still setting its cosine decay: resumed, it is the
    straight run, weights and log rows (stopping with --updates 15 instead would decay to 0 by update 15)."""
    base = ["--dataset", str(hopper_file), "--eval-every", "0", "--checkpoint-every", "10",
            "--lr-decay", "cosine", "--updates", "30", *COMMON]
    main(["train", *base, "--out", str(tmp_path / "straight")])
    main(["train", *base, "--stop-at", "15", "--out", str(tmp_path / "stopped")])  # between two log rows
    assert load_checkpoint(tmp_path / "stopped")["step"] == 15
    assert [row["step"] for row in rows(tmp_path / "stopped")] == ["10"]
    with pytest.raises(SystemExit):  # the same stop again: nothing to do, said in one line
        main(["train", "--resume", str(tmp_path / "stopped"), "--stop-at", "15"])
    assert "already has 15 updates" in capsys.readouterr().err
    main(["train", "--resume", str(tmp_path / "stopped")])
    straight, stopped = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "stopped")
    assert stopped["step"] == 30
    for name in ("actor", "critic"):
        for key, value in straight["agent"][name].items():
            assert torch.equal(value, stopped["agent"][name][key]), f"{name}.{key}"
    assert [row["step"] for row in rows_without_timings(tmp_path / "stopped")] == ["10", "20", "30"]
    assert rows_without_timings(tmp_path / "stopped") == rows_without_timings(tmp_path / "straight")  # lr too


def test_a_checkpoint_of_the_earlier_layout_resumes_as_the_straight_run(tmp_path, hopper_file):
    """Checkpoints written before the agent's state became one tree (each optimiser with a count of its own),
    before the metrics took their progress.csv names (sums under loss/critic, q/mean, ...) and before the expertise
    fields joined the agent's config (beside it in config.json and the checkpoint) resume exactly: stopped between
    two log rows, so the saved sums count."""
    import shutil

    base = ["--dataset", str(hopper_file), "--eval-every", "0", "--checkpoint-every", "10", "--updates", "30",
            "--expertise-weighting", "--expertise-floor", "0.3", *COMMON]
    main(["train", *base, "--out", str(tmp_path / "straight")])
    main(["train", *base, "--stop-at", "15", "--out", str(tmp_path / "stopped")])
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "stopped", old)
    checkpoint = torch.load(old / "checkpoint.pt", weights_only=False)
    for optimizer in ("actor_optimizer", "critic_optimizer"):
        checkpoint["agent"][optimizer]["updates_taken"] = torch.tensor(15)
    renamed = {"critic_loss": "loss/critic", "bc_loss": "loss/bc", "q_loss": "loss/q", "actor_loss": "loss/actor",
               "q_mean": "q/mean", "q_target_mean": "q/target_mean", "lr_actor": "lr/actor", "weight_std": "weight/std",
               "weight_min": "weight/min", "weight_max": "weight/max"}
    assert set(checkpoint["metric_sums"]) == set(renamed)
    checkpoint["metric_sums"] = {renamed[key]: value for key, value in checkpoint["metric_sums"].items()}
    config = json.loads((old / "config.json").read_text())
    for saved in (checkpoint["config"], config):
        saved.update({key: saved["agent"].pop(key) for key in list(saved["agent"]) if key.startswith("expertise_")})
    assert checkpoint["config"]["expertise_floor"] == 0.3
    (old / "config.json").write_text(json.dumps(config))
    torch.save(checkpoint, old / "checkpoint.pt")
    main(["train", "--resume", str(old)])
    assert rows_without_timings(old) == rows_without_timings(tmp_path / "straight")
    straight, resumed = load_checkpoint(tmp_path / "straight"), load_checkpoint(old)
    for key, value in straight["agent"]["actor"].items():
        assert torch.equal(value, resumed["agent"]["actor"][key]), key


@pytest.mark.parametrize("multi_step", [[], ["--action-chunk", "3"], ["--critic-target", "lambda"]],
                         ids=["n-step", "chunks", "lambda"])
def test_resume_equals_uninterrupted(tmp_path, hopper_file, multi_step):
    base = ["--dataset", str(hopper_file), "--eval-every", "0", "--checkpoint-every", "20",
            "--history-len", "2", "--n-step", "3", *multi_step, *COMMON]
    main(["train", *base, "--updates", "40", "--out", str(tmp_path / "straight")])
    main(["train", *base, "--updates", "20", "--out", str(tmp_path / "split")])
    main(["train", "--resume", str(tmp_path / "split"), "--updates", "40"])
    straight = load_checkpoint(tmp_path / "straight")
    split = load_checkpoint(tmp_path / "split")
    assert split["step"] == 40
    for name in ("actor", "ema_actor", "critic", "critic_target"):
        for key, value in straight["agent"][name].items():
            assert torch.equal(value, split["agent"][name][key]), f"{name}.{key}"
    assert rows_without_timings(tmp_path / "straight") == rows_without_timings(tmp_path / "split")
    split_wall = [float(row["wall_s"]) for row in rows(tmp_path / "split")]
    assert split_wall[1] > split_wall[0] > 0  # the wall clock carries over the resumption


def test_same_seed_is_bitwise_reproducible(tmp_path, hopper_file):
    """At the default batch (256) and PyTorch's default threads, in two processes (docs/training.md)."""
    for name in ("a", "b"):
        result = run_cli(["train", "--dataset", str(hopper_file), "--updates", "15", "--eval-every", "0",
                          "--checkpoint-every", "15", "--history-len", "4", "--n-step", "3", "--device", "cpu",
                          "--no-tensorboard", "--out", str(tmp_path / name)])
        assert result.returncode == 0, result.stderr
    first, second = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for key, value in first["agent"]["actor"].items():
        assert torch.equal(value, second["agent"]["actor"][key])


def test_clear_errors(tmp_path, hopper_file, capsys):
    def error_of(arguments):
        with pytest.raises(SystemExit) as exit_info:
            main(arguments)
        assert exit_info.value.code == 2
        message = capsys.readouterr().err.strip()
        assert message.startswith("trajdiff: error:") and "\n" not in message
        return message

    assert "no dataset at" in error_of(["train", "--dataset", "nowhere.hdf5", *COMMON])
    assert "Walker2d-v5 has 17 and 6" in error_of(
        ["train", "--dataset", str(hopper_file), "--env", "Walker2d-v5", "--out", str(tmp_path / "x"), *COMMON])
    assert "cannot make environment" in error_of(
        ["train", "--dataset", str(hopper_file), "--env", "NoSuchEnv-v0", "--out", str(tmp_path / "y"), *COMMON])
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert "not a readable trajdiff checkpoint" in error_of(["eval", str(broken)])
    assert "no checkpoint at" in error_of(["eval", str(tmp_path)])
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    capsys.readouterr()
    assert "incompatible config (history_len" in error_of(["train", "--resume", str(run), "--updates", "8",
                                                           "--history-len", "4"])
    assert "unknown preset" in error_of(["train", "--preset", "pendulum-medium"])


def test_preset_sets_published_hyperparameters():
    config = default_config(["--preset", "walker2d-medium-v2"])
    assert config.agent.grad_norm == 1.0 and config.agent.eta == 1.0 and config.schedule.updates == 2_000_000
    assert config.agent.lr_decay == "diffusion-ql"
    assert default_config(["--preset", "hopper-medium-replay"]).agent.grad_norm == 4.0


def test_expertise_weighted_training_logs_weights(tmp_path, hopper_file):
    """Weight statistics join the rows; every progress.csv column is written by its name in the package (a grep
    for a column finds the code that makes it)."""
    out = tmp_path / "weighted"
    main(["train", "--dataset", str(hopper_file), "--updates", "20", "--eval-every", "10", "--eval-episodes", "1",
          "--out", str(out), "--expertise-weighting", "--expertise-floor", "0.2", *COMMON])
    progress = rows(out)
    assert {"weight_std", "weight_min", "weight_max"} <= set(progress[0])
    package = "".join(path.read_text() for path in Path(trajdiff.__file__).parent.rglob("*.py"))
    assert "eval_q_bias" in progress[0] and [column for column in progress[0] if f'"{column}"' not in package] == []
    assert float(progress[0]["weight_min"]) > 0
    summary = json.loads((out / "expertise.json").read_text())
    assert summary["components"] >= 1 and (out / "expertise.png").stat().st_size > 0


def test_data_info_expertise_json(tmp_path, hopper_file, capsys):
    main(["data", "info", str(hopper_file), "--expertise", "--json", "--plot", str(tmp_path / "p.png")])
    report = json.loads(capsys.readouterr().out)
    assert report["components"] >= 1 and len(report["episode_expertise"]) == report["episodes"]
    assert (tmp_path / "p.png").stat().st_size > 0


def test_wandb_mirrors_every_row_offline_and_a_resume_continues_its_run(tmp_path, hopper_file, monkeypatch):
    """--wandb writes an offline W&B run into OUT/wandb (no network): its history holds each progress.csv row's
    values; the resumed part logs into the same W&B run id."""
    import re

    wandb = pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = tmp_path / "run"
    base = ["--dataset", str(hopper_file), "--eval-every", "0", "--checkpoint-every", "10", "--updates", "20",
            "--wandb", *COMMON]
    main(["train", *base, "--stop-at", "10", "--out", str(out)])
    main(["train", "--resume", str(out)])
    # W&B's service writes a finished run's file after run.finish() returns (under load, a full suite once read
    # the second part's file as its 7-byte header alone); teardown waits for it, as a command's exit does
    wandb.teardown()
    parts = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(parts) == 2 and parts[0].name == parts[1].name  # two starts, one W&B run
    history = b"".join(part.read_bytes() for part in parts)
    logged = rows(out)
    assert [row["step"] for row in logged] == ["10", "20"]
    for row in logged:
        for key in ("critic_loss", "bc_loss", "q_mean", "lr_actor"):
            value = json.dumps(float(row[key])).encode()
            assert re.search(re.escape(key.encode()) + rb".{1,8}" + re.escape(value), history, re.DOTALL), key


def test_wandb_without_the_package_is_one_line_before_any_work(tmp_path, hopper_file, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "wandb" else
                        find_spec(name, *rest))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", str(hopper_file), "--wandb", "--out", str(tmp_path / "run"), *COMMON])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == ("trajdiff: error: --wandb needs Weights & Biases: "
                                               "pip install 'trajdiff[wandb]'")
    assert not (tmp_path / "run").exists()


def test_eval_does_not_need_the_training_data(tmp_path, hopper_file, capsys):
    data = tmp_path / "copy.hdf5"
    data.write_bytes(hopper_file.read_bytes())
    run = tmp_path / "run"
    main(["train", "--dataset", str(data), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    data.unlink()
    capsys.readouterr()
    main(["eval", str(run), "--episodes", "1", "--json", "--device", "cpu"])
    assert json.loads(capsys.readouterr().out)["episodes"] == 1


def run_cli(arguments: list[str], **environment: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process: MuJoCo picks its OpenGL backend once, at import."""
    return subprocess.run([sys.executable, "-m", "trajdiff.cli", *arguments], capture_output=True, text=True,
                          env={**os.environ, **environment}, timeout=600)


def test_eval_renders_a_video_with_egl(tmp_path, hopper_file):
    rendering = subprocess.run([sys.executable, "-c", "import gymnasium as gym; e = gym.make('Hopper-v5', "
                                "render_mode='rgb_array'); e.reset(seed=0); e.render()"],
                               capture_output=True, env={**os.environ, "MUJOCO_GL": "egl"})
    if rendering.returncode != 0:
        pytest.skip("no EGL (libegl-mesa0 or a GPU driver) on this machine")
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    video = tmp_path / "video" / "episode.gif"
    result = run_cli(["eval", str(run), "--episodes", "1", "--video", str(video), "--json", "--device", "cpu"],
                     MUJOCO_GL="egl")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["video"] == str(video)
    with Image.open(video) as image:
        assert image.n_frames >= 2 and image.size == (480, 480)  # the first frame and at least one step


def test_unloadable_opengl_backend_is_a_one_line_error(tmp_path, hopper_file):
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    result = run_cli(["eval", str(run), "--episodes", "1"], MUJOCO_GL="no-such-backend")
    assert result.returncode == 2
    assert result.stderr.startswith("trajdiff: error: cannot make environment 'Hopper-v5'")
    assert "MUJOCO_GL=no-such-backend" in result.stderr and "Traceback" not in result.stderr


def test_seeds_train_as_members_in_their_own_folders(tmp_path, hopper_file, capsys):
    base = ["--dataset", str(hopper_file), "--eval-every", "10", "--eval-episodes", "2", "--checkpoint-every", "10",
            "--history-len", "2", "--n-step", "2", *COMMON]
    main(["train", *base, "--updates", "20", "--seeds", "3", "5", "--out", str(tmp_path / "members")])
    for seed in (3, 5):
        folder = tmp_path / "members" / f"seed-{seed}"
        assert [int(row["step"]) for row in rows(folder)] == [10, 20]
        config = json.loads((folder / "config.json").read_text())
        assert config["seed"] == seed and config["members_trained_with"] == 2 and config["resolved_device"] == "cpu"
        assert load_checkpoint(folder)["step"] == 20
    # a member of the batch is the run its seed gives alone (up to float rounding of the batched products)
    main(["train", *base, "--updates", "20", "--seed", "5", "--out", str(tmp_path / "alone")])
    alone, member = load_checkpoint(tmp_path / "alone"), load_checkpoint(tmp_path / "members" / "seed-5")
    for key, value in alone["agent"]["critic"].items():
        torch.testing.assert_close(value, member["agent"]["critic"][key], rtol=1e-5, atol=1e-5)
    # resume the folder: both members continue together
    main(["train", "--resume", str(tmp_path / "members"), "--updates", "30"])
    assert [int(row["step"]) for row in rows(tmp_path / "members" / "seed-3")] == [10, 20, 30]
    capsys.readouterr()
    main(["eval", str(tmp_path / "members"), "--episodes", "2", "--json", "--device", "cpu"])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line.get("seed") for line in lines[:2]] == [3, 5] and lines[2]["members"] == 2
    assert lines[2]["normalized_score_mean"] == pytest.approx(np.mean([line["normalized_score_mean"]
                                                                      for line in lines[:2]]))


def test_resume_with_more_updates_keeps_the_cosine_decay_falling(tmp_path, hopper_file):
    """The rate is a function of (step, total updates): resumed with a longer run, it follows the longer
    schedule from where it is, instead of climbing back from 0 after the old end."""
    base = ["--dataset", str(hopper_file), "--eval-every", "0", "--checkpoint-every", "5", "--lr-decay", "cosine",
            *COMMON]
    main(["train", *base, "--updates", "10", "--out", str(tmp_path / "run")])
    main(["train", "--resume", str(tmp_path / "run"), "--updates", "20"])
    lr = [float(row["lr_actor"]) for row in rows(tmp_path / "run")]
    # rows average the rate over their 5 updates: cosine over 10, then over 20 from step 10 on
    expected = [np.mean([3e-4 * 0.5 * (1 + np.cos(np.pi * t / total)) for t in range(start, start + 5)])
                for start, total in ((0, 10), (5, 10), (10, 20), (15, 20))]
    np.testing.assert_allclose(lr, expected, rtol=1e-5)


def test_random_state_from_another_device_type_loads(tmp_path, hopper_file, capsys):
    """A checkpoint written on CUDA (here: its generator entries made CUDA's) evaluates on CPU, and resumes on
    CPU with its random streams started afresh, said in one line; the weights load as they are."""
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    foreign = {"device": "cuda", "state": torch.zeros(16, dtype=torch.uint8)}  # a CUDA generator's state size
    checkpoint["agent"]["generator"] = foreign
    checkpoint["sampler_generator"] = foreign
    torch.save(checkpoint, run / "checkpoint.pt")
    capsys.readouterr()
    main(["eval", str(run), "--episodes", "1", "--json", "--device", "cpu"])
    output = capsys.readouterr()
    assert output.err.splitlines()[0] == "trajdiff: member 0: random streams saved on cuda start afresh on cpu"
    assert np.isfinite(json.loads(output.out)["return_mean"])  # stdout stays one JSON object
    main(["train", "--resume", str(run), "--updates", "8"])
    assert "start afresh on cpu" in capsys.readouterr().err
    assert load_checkpoint(run)["step"] == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_run_evaluates_on_cpu_and_cuda_alike(tmp_path, hopper_file, capsys):
    """Trained on CUDA (through the captured graph), evaluated on CPU: finite returns, and the two devices'
    returns agree in distribution (same checkpoint, 10 episodes each; a loose two-sample check)."""
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "200", "--eval-every", "0", "--checkpoint-every",
          "200", "--history-len", "3", "--n-step", "2", "--device", "cuda", "--batch-size", "64", "--no-tensorboard",
          "--out", str(run)])
    assert json.loads((run / "config.json").read_text())["resolved_device"].startswith("cuda")
    returns = {}
    for device in ("cpu", "cuda"):
        capsys.readouterr()
        main(["eval", str(run), "--episodes", "10", "--json", "--device", device])
        returns[device] = np.array(json.loads(capsys.readouterr().out)["episode_returns"])
    assert np.isfinite(returns["cpu"]).all()
    spread = max(returns["cpu"].std(), returns["cuda"].std(), 1.0)
    assert abs(returns["cpu"].mean() - returns["cuda"].mean()) < 3 * spread
    # and resumed on CPU: one line says the random streams start afresh, and training goes on
    main(["train", "--resume", str(run), "--updates", "210", "--device", "cpu"])
    assert "start afresh on cpu" in capsys.readouterr().err


def test_partial_observability_trains_evaluates_and_is_recorded(tmp_path, hopper_file, capsys):
    """--observe positions: the agent sees 5 of Hopper's 11 entries in the data and in the environment; eval
    honours the run's choice; frame-stack and critic history train beside it in one member batch each."""
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "6", "--eval-every", "6", "--eval-episodes", "1",
          "--checkpoint-every", "6", "--observe", "positions", "--history-len", "4", "--history-encoder", "frames",
          "--critic-uses-history", "--out", str(run), *COMMON])
    config = json.loads((run / "config.json").read_text())
    assert config["observe"] == "positions" and config["agent"]["history_encoder"] == "frames"
    assert load_checkpoint(run)["agent"]["actor"]["denoiser.body.0.weight"].shape[1] == 3 + 16 + 4 * 5
    capsys.readouterr()
    main(["eval", str(run), "--episodes", "1", "--json", "--device", "cpu"])
    assert np.isfinite(json.loads(capsys.readouterr().out)["return_mean"])


def test_config_records_every_start_with_its_code_machine_and_command(tmp_path, hopper_file):
    """Each start of a run (the first, each resumption) is recorded in config.json: the update it started at, the
    code commit, the CPU model and the command line, so that a run's parts carry their own provenance."""
    import re

    from trajdiff.provenance import cpu_model

    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "2",
          "--stop-at", "2", "--out", str(run), *COMMON])
    main(["train", "--resume", str(run)])
    starts = json.loads((run / "config.json").read_text())["starts"]
    assert [start["at_update"] for start in starts] == [0, 2]
    for start in starts:
        assert re.fullmatch(r"[0-9a-f]{40}(\+changes)?|unknown", start["code_commit"])
        assert start["cpu"] == cpu_model() and start["gpu"] is None and start["versions"]["torch"]
    assert starts[0]["command"].startswith(f"trajdiff train --dataset {hopper_file} --updates 4")
    assert starts[1]["command"] == f"trajdiff train --resume {run}"


def test_member_and_resumable_fields_come_from_their_declarations(tmp_path):
    """Members of one batch may differ in seed, folder, expertise weighting and the agent's per-member fields, and
    in nothing else; a resumption may change the schedule, the dataset's path and the folder, and nothing else."""
    import dataclasses

    from trajdiff.agent import AgentConfig
    from trajdiff.commands.train_config import RunSchedule
    from trajdiff.errors import TrajdiffError

    base = TrainConfig(out=tmp_path / "run", seeds=(0, 1))
    first, second = member_configs(base)
    check_members([first, dataclasses.replace(second, agent=AgentConfig(eta=2.0, n_step=3, expertise_weighting=True,
                                                                        expertise_floor=0.3))])
    with pytest.raises(TrajdiffError, match="cannot train in one batch with .*: batch_size differ"):
        check_members([first, dataclasses.replace(second, batch_size=64)])
    with pytest.raises(TrajdiffError, match="cannot train in one batch with .*: hidden_dim differ"):
        check_members([first, dataclasses.replace(second, agent=AgentConfig(hidden_dim=64))])
    check_resumable(first, dataclasses.replace(first, schedule=RunSchedule(updates=5), dataset="/elsewhere.hdf5",
                                               out=tmp_path / "moved", resume=tmp_path / "moved"))
    with pytest.raises(TrajdiffError, match=r"incompatible config \(batch_size 64 asked, 256 saved\)"):
        check_resumable(first, dataclasses.replace(first, batch_size=64))
