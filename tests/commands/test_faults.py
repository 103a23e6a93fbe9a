"""Fault injection with known outcomes: kills, a full disk, broken files, divergence, two writers, bad input."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.commands.test_train import COMMON, rows
from trajdiff import checkpoint as checkpoint_module
from trajdiff.checkpoint import load_checkpoint
from trajdiff.cli import main


def start_cli(arguments: list[str]) -> subprocess.Popen:
    """The CLI in a child process that takes Ctrl-C as a terminal's would: a test suite started in the background
    (`make test &`) ignores SIGINT, children inherit that, and Python then installs no KeyboardInterrupt."""
    return subprocess.Popen([sys.executable, "-m", "trajdiff.cli", *arguments], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(condition, timeout: float = 300.0) -> None:  # noqa: ANN001
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def logged_steps(run) -> list[int]:  # noqa: ANN001
    try:
        with (run / "progress.csv").open() as handle:
            return [int(row["step"]) for row in csv.DictReader(handle)]
    except (FileNotFoundError, ValueError, KeyError):
        return []


def error_of(arguments: list[str], capsys) -> str:  # noqa: ANN001
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("trajdiff: error:")
    return message


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, hopper_file):
    """Killed after logging past its checkpoint, and killed at once: resumed runs end with the same weights,
    progress.csv rows and TensorBoard scalars (each step once) as a run never interrupted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    arguments = ["--dataset", str(hopper_file), "--eval-every", "5", "--eval-episodes", "1", "--checkpoint-every",
                 "20", "--history-len", "2", "--n-step", "2", "--device", "cpu", "--batch-size", "32",
                 "--updates", "60"]
    straight = start_cli(["train", *arguments, "--out", str(tmp_path / "straight")])
    assert straight.wait() == 0, straight.stderr.read()
    killed = tmp_path / "killed"
    # kill 1: after rows past the checkpoint at 20 (events at 25 and 30 must go); kill 2: a moment after resuming
    process = start_cli(["train", *arguments, "--out", str(killed)])
    wait_for(lambda: 30 in logged_steps(killed))
    process.send_signal(signal.SIGKILL)
    process.wait()
    (killed / ".checkpoint.pt.orphan.tmp").write_bytes(b"a write cut short")
    process = start_cli(["train", "--resume", str(killed)])
    wait_for(lambda: 45 in logged_steps(killed))
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = start_cli(["train", "--resume", str(killed)])
    assert resumed.wait() == 0, resumed.stderr.read()
    assert not list(killed.glob(".checkpoint.pt.*.tmp"))  # leftovers removed
    first, second = load_checkpoint(tmp_path / "straight"), load_checkpoint(killed)
    for name in ("actor", "critic", "ema_actor", "critic_target"):
        for key, value in first["agent"][name].items():
            assert torch.equal(value, second["agent"][name][key]), f"{name}.{key}"
    timings = ("updates_per_s", "wall_s")
    assert ([{k: v for k, v in row.items() if k not in timings} for row in rows(tmp_path / "straight")]
            == [{k: v for k, v in row.items() if k not in timings} for row in rows(killed)])
    scalars = []
    for run in (tmp_path / "straight", killed):
        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        scalars.append([(event.step, event.value) for event in events.Scalars("critic_loss")])
    assert [step for step, _ in scalars[1]] == list(range(5, 61, 5))
    np.testing.assert_allclose([value for _, value in scalars[1]], [value for _, value in scalars[0]], rtol=1e-6)


def test_a_full_disk_names_the_checkpoint_and_keeps_the_previous_one(tmp_path, hopper_file, capsys, monkeypatch):
    real_save = torch.save
    calls = []

    def save_until_full(payload, path):  # noqa: ANN001
        calls.append(path)
        if len(calls) > 1:
            with open(path, "wb") as handle:  # part of the file, then the device is full
                handle.write(b"x" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(payload, path)

    monkeypatch.setattr(checkpoint_module.torch, "save", save_until_full)
    run = tmp_path / "run"
    message = error_of(["train", "--dataset", str(hopper_file), "--updates", "20", "--eval-every", "0",
                        "--checkpoint-every", "10", "--out", str(run), *COMMON], capsys)
    assert f"cannot write the checkpoint {run / 'checkpoint.pt'} (no space left on the device)" in message
    assert "the previous checkpoint is intact" in message
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    assert load_checkpoint(run)["step"] == 10 and not list(run.glob(".checkpoint.pt.*.tmp"))


def test_a_truncated_checkpoint_is_one_line(tmp_path, hopper_file, capsys):
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    path = run / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    capsys.readouterr()
    assert "is not a readable trajdiff checkpoint" in error_of(["eval", str(run)], capsys)
    assert "is not a readable trajdiff checkpoint" in error_of(["train", "--resume", str(run), "--updates", "8"],
                                                               capsys)


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path, hopper_file, capsys):
    """Observations x 1e30 in 100 rows drive the losses to NaN: the run stops with one line, exit 2."""
    data = tmp_path / "huge.hdf5"
    data.write_bytes(hopper_file.read_bytes())
    with h5py.File(data, "r+") as handle:
        observations = handle["observations"][:]
        observations[::6][:100] *= 1e30
        handle["observations"][:] = observations
    run = tmp_path / "run"
    message = error_of(["train", "--dataset", str(data), "--updates", "200", "--eval-every", "0",
                        "--checkpoint-every", "20", "--out", str(run), *COMMON], capsys)
    assert "training diverged:" in message and "loss" in message and "is nan" in message
    if (run / "checkpoint.pt").exists():  # whatever was saved before the NaNs is finite and evaluates
        for tensor in load_checkpoint(run)["agent"]["actor"].values():
            assert torch.isfinite(tensor).all()
    # a checkpoint with non-finite weights (written by hand) is refused by eval in one line
    good = tmp_path / "good"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(good), *COMMON])
    checkpoint = torch.load(good / "checkpoint.pt", weights_only=False)
    next(iter(checkpoint["agent"]["critic"].values())).fill_(float("nan"))
    torch.save(checkpoint, good / "checkpoint.pt")
    capsys.readouterr()
    assert "holds non-finite (NaN or infinite) weights" in error_of(["eval", str(good), "--device", "cpu"], capsys)


def test_a_second_training_into_a_locked_folder_is_refused(tmp_path, hopper_file, capsys):
    run = tmp_path / "run"
    holder = start_cli(["train", "--dataset", str(hopper_file), "--updates", "100000", "--eval-every", "0",
                        "--checkpoint-every", "2", "--out", str(run), *COMMON])
    try:
        wait_for(lambda: (run / ".lock").is_file() and (run / ".lock").read_text().strip().isdigit()
                 and (run / "checkpoint.pt").is_file())
        message = error_of(["train", "--resume", str(run), "--updates", "200000"], capsys)  # past the checkpoint check
        assert f"is in use by another trajdiff process (pid {holder.pid})" in message
    finally:
        holder.send_signal(signal.SIGINT)
        try:
            _, stderr = holder.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            holder.kill()  # never leave a training process behind
            holder.communicate()
            raise
    # Ctrl-C after a checkpoint: one line with the last saved step and the command that continues
    assert "trajdiff: interrupted at update" in stderr and f"continue with: trajdiff train --resume {run}" in stderr
    assert holder.returncode == 130


def test_minari_offline_names_the_network(monkeypatch, capsys):
    minari = pytest.importorskip("minari")

    def unreachable(dataset_id, download):  # noqa: ANN001
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(minari, "load_dataset", unreachable)
    message = error_of(["data", "info", "mujoco/hopper/medium-v0"], capsys)
    assert "could not be downloaded: the dataset server cannot be reached: no network?" in message


@pytest.mark.parametrize("arguments, expected", [
    (["train", "--env", "CartPole-v1"], "CartPole-v1 has Discrete actions"),
    (["train", "--diffusion-steps", "0"], "--diffusion-steps must be at least 1"),
    (["train", "--actor-lr", "-1"], "--actor-lr must be positive"),
    (["train", "--action-candidates", "0"], "--action-candidates must be at least 1"),
    (["train", "--hidden-dim", "0"], "--hidden-dim must be at least 1"),
    (["train", "--discount", "1.5"], "--discount must be in (0, 1]"),
    (["train", "--eval-every", "-5"], "--eval-every must be at least 0"),
    (["train", "--action-chunk", "0"], "--action-chunk must be at least 1"),
    (["train", "--action-chunk", "4"], "--action-chunk 4 needs --n-step 4"),
    (["train", "--critic-target", "lambda", "--n-step", "3", "--td-lambda", "1.5"], "--td-lambda must be in [0, 1]"),
    (["train", "--critic-target", "lambda", "--n-step", "3", "--td-lambda", "-0.1"], "--td-lambda must be in [0, 1]"),
    (["train", "--critic-target", "lambda"], "--critic-target lambda needs --n-step above 1"),
    (["train", "--critic-target", "lambda", "--n-step", "4", "--action-chunk", "4"],
     "--critic-target lambda with --action-chunk is not supported"),
    (["train", "--td-lambda", "0.3"], "--td-lambda applies to --critic-target lambda only"),
    (["eval", "RUN", "--episodes", "0"], "--episodes must be at least 1"),
    (["eval", "RUN", "--episodes", "-2"], "--episodes must be at least 1"),
])
def test_bad_values_are_one_line(arguments, expected, tmp_path, capsys):
    arguments = [str(tmp_path) if word == "RUN" else word for word in arguments]
    if arguments[0] == "train":
        arguments += ["--out", str(tmp_path / "run"), "--device", "cpu"]
    assert expected in error_of(arguments, capsys)
    assert not (tmp_path / "run").exists()  # nothing was created


def test_bad_paths_are_one_line_and_change_nothing(tmp_path, hopper_file, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    base = ["train", "--dataset", str(hopper_file), *COMMON]
    assert "is a file, not a run folder" in error_of([*base, "--out", str(a_file)], capsys)
    assert "cannot create" in error_of([*base, "--out", str(a_file / "below")], capsys)
    assert a_file.read_text() == "mine"
    run = tmp_path / "run"
    main([*base, "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4", "--out", str(run)])
    capsys.readouterr()
    assert "--resume takes the run folder, not a file" in error_of(
        ["train", "--resume", str(run / "checkpoint.pt"), "--updates", "8"], capsys)
    if os.geteuid() != 0:  # root writes anywhere: the permission case needs an ordinary user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "permission denied" in error_of([*base, "--out", str(locked / "run")], capsys)


def test_expertise_on_one_episode_is_one_line(tmp_path, capsys):
    from tests.conftest import make_arrays
    from trajdiff.data import EpisodeDataset, write_d4rl_hdf5

    path = tmp_path / "one.hdf5"
    write_d4rl_hdf5(path, EpisodeDataset.from_arrays(make_arrays([40], ["timeout"], 11, 3),
                                                     metadata={"env_id": "Hopper-v5"}))
    assert "has 1; train without --expertise-weighting" in error_of(
        ["train", "--dataset", str(path), "--expertise-weighting", "--out", str(tmp_path / "r"), *COMMON], capsys)
    assert "has 1" in error_of(["data", "info", str(path), "--expertise"], capsys)


def test_data_info_writes_a_plot_only_when_asked(tmp_path, hopper_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["data", "info", str(hopper_file), "--expertise", "--json"])
    assert "expertise_plot" not in json.loads(capsys.readouterr().out)
    assert not list(tmp_path.glob("*.png"))
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert "cannot write the histogram" in error_of(
        ["data", "info", str(hopper_file), "--expertise", "--plot", str(a_file / "p.png")], capsys)


def test_data_info_return_to_go_row_and_its_discount(hopper_file, capsys):
    main(["data", "info", str(hopper_file), "--json", "--discount", "1"])
    summary = json.loads(capsys.readouterr().out)
    # undiscounted, an episode's first state's return-to-go is the episode's return
    assert summary["return_to_go"]["max"] >= summary["return"]["max"] - 1e-6
    assert summary["discount"] == 1
    assert "--discount must be in (0, 1]" in error_of(["data", "info", str(hopper_file), "--discount", "0"], capsys)


def test_command_line_conventions(capsys):
    main(["--version"])
    assert capsys.readouterr().out.startswith("trajdiff ")
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2 and "unknown command 'frobnicate'" in capsys.readouterr().err
    for group, command in (("data", "data info"), ("collect", "collect suite")):
        with pytest.raises(SystemExit) as exit_info:
            main([group, "--help"])
        assert exit_info.value.code == 0 and command in capsys.readouterr().out


def test_help_into_a_closed_pipe_is_quiet():
    """`trajdiff train --help | head -1`: the reader leaves early; no traceback."""
    completed = subprocess.run(f"{sys.executable} -m trajdiff.cli train --help | head -1", shell=True,
                               capture_output=True, text=True, timeout=120)
    assert completed.stdout.startswith("usage: trajdiff train")
    assert "Traceback" not in completed.stderr and "BrokenPipe" not in completed.stderr


# -- a run folder found from where it is; the data it trained on; nothing left behind; nothing silent --

def short_run(run, data, *extra):  # noqa: ANN001
    main(["train", "--dataset", str(data), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON, *extra])


def test_a_copied_or_moved_run_resumes_where_it_is(tmp_path, hopper_file, capsys, monkeypatch):
    import shutil

    original, copy = tmp_path / "a", tmp_path / "b"
    short_run(original, hopper_file)
    shutil.copytree(original, copy)
    before = (original / "checkpoint.pt").read_bytes()
    main(["train", "--resume", str(copy), "--updates", "8"])
    assert f"into {copy}" in capsys.readouterr().out
    assert load_checkpoint(copy)["step"] == 8 and (original / "checkpoint.pt").read_bytes() == before
    saved = json.loads((copy / "config.json").read_text())
    assert saved["out"] == str(copy) and saved["folder_history"] == [str(original), str(copy)]
    # trained with a relative --out, moved, resumed from another working directory
    monkeypatch.chdir(tmp_path)
    short_run("relative", hopper_file)
    (tmp_path / "relative").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "b")
    main(["train", "--resume", str(tmp_path / "moved"), "--updates", "8"])
    assert load_checkpoint(tmp_path / "moved")["step"] == 8


def test_a_dataset_changed_on_disk_is_refused_unless_accepted(tmp_path, hopper_file, capsys):
    data = tmp_path / "data.hdf5"
    data.write_bytes(hopper_file.read_bytes())
    run = tmp_path / "run"
    short_run(run, data)
    with h5py.File(data, "r+") as handle:
        handle["rewards"][:] = 2 * handle["rewards"][:]
    capsys.readouterr()
    message = error_of(["train", "--resume", str(run), "--updates", "8"], capsys)
    assert "is not the data" in message and "--accept-changed-dataset" in message
    assert load_checkpoint(run)["step"] == 4
    evaluating = error_of(["eval", str(run), "--episodes", "1", "--device", "cpu"], capsys)
    assert "is not the data" in evaluating and "; evaluate with --accept-changed-dataset" in evaluating
    main(["train", "--resume", str(run), "--updates", "8", "--accept-changed-dataset"])
    changes = json.loads((run / "config.json").read_text())["dataset_changes"]
    assert len(changes) == 1 and changes[0]["at_update"] == 4 and changes[0]["from"] != changes[0]["to"]


@pytest.mark.parametrize("arguments, expected", [
    (["train", "--seed", "-5"], "--seed must be in 0..4294967295 (got -5)"),
    (["train", "--seeds", "-1"], "--seeds must be in 0..4294967295 (got -1)"),
    (["train", "--seed", "4294967296"], "--seed must be in 0..4294967295"),
    (["train", "--batch-size", "10000000"], "needs about"),
    (["train", "--history-len", "100000"], "is longer than the longest episode"),
    (["train", "--n-step", "100000000"], "--n-step 100000000 is longer than the longest episode"),
    (["train", "--action-chunk", "100000", "--n-step", "100000"], "--action-chunk 100000 is longer than the longest"),
    (["train", "--action-candidates", "100000000", "--eval-every", "2"], "use fewer --action-candidates"),
    (["train", "--eval-episodes", "100000000"], "--eval-episodes must be at most 10,000"),
    (["train", "--updates", "100000000000000000000"], "--updates must be at most 1,000,000,000"),
    (["train", "--critic-lr", "inf"], "--critic-lr must be positive and finite"),
    (["train", "--device", "mps"], "device 'mps' is not supported"),
    (["train", "--device", "meta"], "device 'meta' is not supported"),
    (["eval", "RUN", "--seed", "-1"], "--seed must be at least 0"),
    (["eval", "RUN", "--video", "v"], "give a file ending in .mp4 or .gif"),
    (["eval", "RUN", "--video", "RUN/checkpoint.pt/v.gif"], "is a file"),
    (["eval", "RUN", "--episodes", "100000000000"], "--episodes must be at most 10,000,000"),
    (["data", "info", "DATA", "--expertise", "--plot", "p.xyz"], "matplotlib writes"),
])
def test_bad_input_ends_in_one_line_before_any_work(arguments, expected, tmp_path, hopper_file, capsys):
    run = tmp_path / "run"
    if "RUN" in arguments:
        short_run(run, hopper_file)
        capsys.readouterr()
    arguments = [word.replace("RUN", str(run)).replace("DATA", str(hopper_file)) for word in arguments]
    if arguments[0] == "train":  # the case's own flags last: they win
        arguments = ["train", "--dataset", str(hopper_file), "--out", str(tmp_path / "new"), "--updates", "4",
                     *COMMON, *arguments[1:]]
    assert expected in error_of(arguments, capsys)
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob("p.xyz"))


@pytest.mark.parametrize("file", ["config.json", "progress.csv"])
def test_a_full_disk_while_writing_the_logs_is_one_line(file, tmp_path, hopper_file, capsys, monkeypatch):
    from trajdiff import runlog
    from trajdiff.commands import train as train_module

    def full(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError(errno.ENOSPC, "No space left on device")

    if file == "config.json":
        monkeypatch.setattr(train_module, "atomic_write_json", full)
    else:
        monkeypatch.setattr(runlog.csv, "DictWriter", full)
    message = error_of(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0",
                        "--checkpoint-every", "2", "--out", str(tmp_path / "run"), *COMMON], capsys)
    assert f"cannot write {tmp_path / 'run' / file}" in message and "o space left" in message


def test_before_the_first_checkpoint_nothing_is_promised_and_nothing_is_left(tmp_path, hopper_file, capsys):
    # divergence before any checkpoint: says none exists, and the folder goes
    data = tmp_path / "huge.hdf5"
    data.write_bytes(hopper_file.read_bytes())
    with h5py.File(data, "r+") as handle:
        observations = handle["observations"][:]
        observations[::2] *= 1e30
        handle["observations"][:] = observations
    run = tmp_path / "run"
    message = error_of(["train", "--dataset", str(data), "--updates", "200", "--eval-every", "0",
                        "--checkpoint-every", "200", "--out", str(run / "deeper"), *COMMON], capsys)
    assert "training diverged" in message and "no checkpoint had been written yet" in message
    assert not run.exists()
    # Ctrl-C before the first checkpoint: no resume advice, nothing left in a folder that was there before
    run.mkdir()
    returncode, stderr = signal_before_the_first_checkpoint(run, hopper_file, signal.SIGINT)
    assert "no checkpoint had been written yet, so nothing is kept" in stderr and "--resume" not in stderr
    assert returncode == 130 and list(run.iterdir()) == []


def signal_before_the_first_checkpoint(run, data, sent: int) -> tuple[int, str]:  # noqa: ANN001
    """Start a long run into ``run``, send it ``sent`` once it trains, and return its exit status and stderr."""
    holder = start_cli(["train", "--dataset", str(data), "--updates", "100000", "--eval-every", "0",
                        "--checkpoint-every", "100000", "--out", str(run), *COMMON])
    wait_for(lambda: (run / ".lock").is_file() and (run / ".lock").read_text().strip().isdigit())
    time.sleep(1.0)
    holder.send_signal(sent)
    _, stderr = holder.communicate(timeout=120)
    return holder.returncode, stderr


def test_failed_commands_leave_nothing_behind(tmp_path, hopper_file, capsys, monkeypatch):
    from tests.conftest import make_arrays
    from trajdiff.data import EpisodeDataset, write_d4rl_hdf5

    one = tmp_path / "one.hdf5"
    write_d4rl_hdf5(one, EpisodeDataset.from_arrays(make_arrays([40], ["timeout"], 11, 3),
                                                    metadata={"env_id": "Hopper-v5"}))
    out = tmp_path / "out"
    error_of(["train", "--dataset", str(one), "--expertise-weighting", "--out", str(out), *COMMON], capsys)
    assert not out.exists()
    run = tmp_path / "run"
    short_run(run, hopper_file)
    error_of(["eval", str(run), "--video", str(tmp_path / "d" / "v.xyz")], capsys)
    assert not (tmp_path / "d").exists()
    monkeypatch.setenv("D4RL_DATASET_DIR", str(tmp_path / "d4rl" / "datasets"))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert "could not be downloaded" in error_of(["data", "info", "hopper-medium-v2"], capsys)
    assert not (tmp_path / "d4rl").exists()


def test_silent_cases_now_speak(tmp_path, hopper_file, capsys):
    # a --seeds run with one member's checkpoint gone
    seeds = tmp_path / "seeds"
    main(["train", "--dataset", str(hopper_file), "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--seeds", "0", "1", "--out", str(seeds), *COMMON])
    (seeds / "seed-1" / "checkpoint.pt").unlink()
    assert "seed-1 has no checkpoint" in error_of(["train", "--resume", str(seeds), "--updates", "8"], capsys)
    # --out '' and a folder of someone else's files
    assert "--out names no folder" in error_of(["train", "--dataset", str(hopper_file), "--out", "", *COMMON],
                                               capsys)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    (theirs / ".notes.txt.a1b2.tmp").write_text("an editor's, not a run's")
    assert "not a trajdiff run's (.notes.txt.a1b2.tmp, notes.txt)" in error_of(
        ["train", "--dataset", str(hopper_file), "--out", str(theirs), *COMMON], capsys)
    assert sorted(entry.name for entry in theirs.iterdir()) == [".notes.txt.a1b2.tmp", "notes.txt"]
    # collect mix into one of its inputs
    before = hopper_file.read_bytes()
    assert "is one of the datasets to mix" in error_of(
        ["collect", "mix", str(hopper_file), "default", "--names", "a", "b", "--out", str(hopper_file)], capsys)
    assert hopper_file.read_bytes() == before
    # export into a folder that has the files already
    run = tmp_path / "run"
    short_run(run, hopper_file)
    exported = tmp_path / "export"
    exported.mkdir()
    (exported / "policy.json").write_text("mine")
    capsys.readouterr()
    assert "already has policy.json" in error_of(["export", str(run), "--out", str(exported)], capsys)
    assert (exported / "policy.json").read_text() == "mine"
    # complex observations
    data = tmp_path / "complex.hdf5"
    data.write_bytes(hopper_file.read_bytes())
    with h5py.File(data, "r+") as handle:
        observations = handle["observations"][:]
        del handle["observations"]
        handle["observations"] = observations.astype(np.complex64)
    assert "observations is not real-valued" in error_of(["data", "info", str(data)], capsys)
    # a long evaluation shows its progress
    main(["eval", str(run), "--episodes", "3", "--device", "cpu"])
    assert "evaluate Hopper-v5" in capsys.readouterr().err


def test_a_torn_last_row_past_the_checkpoint_is_dropped_and_elsewhere_refused(tmp_path, hopper_file, capsys):
    run = tmp_path / "run"
    main(["train", "--dataset", str(hopper_file), "--updates", "6", "--eval-every", "0", "--checkpoint-every", "2",
          "--out", str(run), *COMMON])
    progress = run / "progress.csv"
    text = progress.read_text()
    header, *lines = text.splitlines()
    checkpoint_step = load_checkpoint(run)["step"]
    progress.write_text("\n".join([header, *lines, f"{checkpoint_step + 2},0.12"]))  # a kill's cut row
    main(["train", "--resume", str(run), "--updates", "8"])
    steps = [int(row["step"]) for row in rows(run)]
    assert steps == [2, 4, 6, 8] and all(value != "" for row in rows(run) for value in row.values())
    lines = progress.read_text().splitlines()
    progress.write_text("\n".join([*lines[:-1], lines[-1][:5]]))  # the row of update 8 cut, at the checkpoint
    capsys.readouterr()
    assert "is cut short" in error_of(["train", "--resume", str(run), "--updates", "10"], capsys)


def test_a_folder_of_a_run_killed_before_its_first_checkpoint_is_cleaned_before_reuse(tmp_path, hopper_file):
    """kill -9 before the first checkpoint, then another run (other seed, other lr) into the same --out: the new
    run's files hold its own rows and scalars only, and no expertise files of the dead run stay beside them. A kill
    in the middle of an atomic write leaves its temporary file: that is the run's too, and goes."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    common = ["--dataset", str(hopper_file), "--eval-every", "10", "--eval-episodes", "1", "--device", "cpu",
              "--batch-size", "32", "--out", str(run)]
    dead = start_cli(["train", *common, "--updates", "100000", "--checkpoint-every", "100000", "--seed", "3",
                      "--actor-lr", "1e-3", "--expertise-weighting"])
    wait_for(lambda: len(logged_steps(run)) >= 2)
    dead.kill()
    dead.communicate(timeout=60)
    assert (run / "expertise.json").is_file() and not (run / "checkpoint.pt").exists()
    cut_short = [run / ".learning-curve.png.txxo73ci.tmp", run / ".config.json.k2l9.tmp"]
    for temporary in cut_short:
        temporary.write_bytes(b"a write cut short by the kill")
    done = subprocess.run([sys.executable, "-m", "trajdiff.cli", "train", *common, "--updates", "20",
                           "--checkpoint-every", "20"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "held an earlier run that never checkpointed" in done.stderr
    assert logged_steps(run) == [10, 20]
    assert not (run / "expertise.json").exists() and not (run / "expertise.png").exists()
    assert not any(temporary.exists() for temporary in cut_short)
    assert json.loads((run / "config.json").read_text())["seed"] == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("critic_loss")] == [10, 20]
    assert [event.value for event in events.Scalars("lr_actor")] == pytest.approx([3e-4, 3e-4], rel=1e-3)


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path, hopper_file):
    """SIGTERM (kill, timeout, Slurm) before the first checkpoint: a message, exit status 143, nothing left."""
    run = tmp_path / "run"
    returncode, stderr = signal_before_the_first_checkpoint(run, hopper_file, signal.SIGTERM)
    assert "no checkpoint had been written yet, so nothing is kept" in stderr
    assert "terminated (SIGTERM)" in stderr
    assert returncode == 143 and not run.exists()


@pytest.mark.parametrize("arguments, expected", [
    (["train", "--updates", "abc"], "Error parsing --updates"),
    (["train", "--no-such-option", "1"], "Unrecognized options: --no-such-option"),
    (["train", "--resume"], "Missing value for argument '--resume'"),
    (["collect", "train-behavior", "--out"], "Missing value for argument '--out'"),
])
def test_argument_errors_are_one_line(arguments, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(arguments)
    printed = capsys.readouterr()
    assert stopped.value.code == 2 and printed.out == ""
    [message] = printed.err.strip().splitlines()
    assert message.startswith("trajdiff: error: ") and expected in message and message.endswith("--help)")


def test_bench_workers_end_with_their_parent(tmp_path):
    """kill -9 of `trajdiff bench --workers 2`: its workers stop too (they do not finish their batches and block on
    a pipe), so the same command can run again at once."""
    out = tmp_path / "bench"
    parent = start_cli(["bench", "--suite", "smoke", "--budget", "cpu", "--methods", "diffusion-ql", "history-8",
                        "--seeds", "1", "--workers", "2", "--device", "cpu", "--out", str(out)])

    def workers() -> list[int]:
        children = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in children]

    def alive(pid: int) -> bool:
        try:
            state = open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    wait_for(lambda: len(list(out.glob("runs/*/*/seed0/.lock"))) == 2)
    started = workers()
    assert started
    parent.kill()
    parent.communicate(timeout=60)
    wait_for(lambda: not any(alive(pid) for pid in started), timeout=60)


def test_progress_bars_into_a_log_redraw_sparsely(tmp_path, hopper_file):
    """stderr into a file (a batch job's log): the training bar is drawn at its start and end, not at every
    update (it redraws at most once a minute there)."""
    log = tmp_path / "train.log"
    with log.open("w") as handle:
        done = subprocess.run([sys.executable, "-m", "trajdiff.cli", "train", "--dataset", str(hopper_file),
                               "--updates", "300", "--eval-every", "0", "--checkpoint-every", "300",
                               "--out", str(tmp_path / "run"), *COMMON], stderr=handle, stdout=subprocess.DEVNULL)
    assert done.returncode == 0
    draws = log.read_text().replace("\r", "\n").count("update/s")
    assert 1 <= draws <= 4, log.read_text()[-2000:]


def test_behaviour_runs_refuse_bad_input_before_any_work(tmp_path, capsys):
    """collect train-behavior: an --out that is a file, a non-positive interval and a bad environment id are one
    line each, and leave no folder behind."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert "is a file" in error_of(["collect", "train-behavior", "--out", str(a_file)], capsys)
    out = tmp_path / "run"
    assert "--checkpoint-every must be at least 1" in error_of(
        ["collect", "train-behavior", "--out", str(out), "--checkpoint-every", "-5"], capsys)
    assert "cannot make environment 'Nope-v9'" in error_of(
        ["collect", "train-behavior", "--out", str(out), "--env", "Nope-v9"], capsys)
    assert not out.exists() and a_file.read_text() == ""


def test_actions_outside_the_environment_bounds_are_refused(tmp_path, hopper_file, capsys):
    """Actions 5x beyond Hopper's [-1, 1] used to train silently (the policy clamps to its bounds)."""
    data = tmp_path / "loud.hdf5"
    data.write_bytes(hopper_file.read_bytes())
    with h5py.File(data, "r+") as handle:
        handle["actions"][:] = handle["actions"][:] * 5
    out = tmp_path / "run"
    message = error_of(["train", "--dataset", str(data), "--updates", "4", "--out", str(out), *COMMON], capsys)
    assert "accepts actions in [-1, 1]" in message and not out.exists()


def test_a_relative_dataset_path_does_not_tie_the_run_to_its_folder(tmp_path, hopper_file, capsys, monkeypatch):
    """A run started with --dataset data.hdf5 resumes from another folder, by the same file's absolute path and
    from a moved copy (same content); eval beside another file of that name reports no change."""
    start = tmp_path / "start"
    start.mkdir()
    (start / "data.hdf5").write_bytes(hopper_file.read_bytes())
    run = tmp_path / "run"
    monkeypatch.chdir(start)
    main(["train", "--dataset", "data.hdf5", "--updates", "4", "--eval-every", "0", "--checkpoint-every", "4",
          "--out", str(run), *COMMON])
    assert json.loads((run / "config.json").read_text())["dataset"] == str(start / "data.hdf5")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    main(["train", "--resume", str(run), "--updates", "8"])
    main(["train", "--resume", str(run), "--updates", "12", "--dataset", str(start / "data.hdf5")])
    moved = tmp_path / "moved.hdf5"
    (start / "data.hdf5").rename(moved)
    main(["train", "--resume", str(run), "--updates", "16", "--dataset", str(moved)])
    assert json.loads((run / "config.json").read_text())["dataset"] == str(moved)
    (elsewhere / "moved.hdf5").write_bytes(b"not the data")  # another file of that name where eval runs
    capsys.readouterr()
    main(["eval", str(run), "--episodes", "1", "--device", "cpu"])
    assert "dataset changed" not in capsys.readouterr().err


def test_messages_say_what_is_wrong(tmp_path, hopper_file, capsys):
    """--resume FILE, --resume RUN --out OTHER, --seed with --seeds, and an incompatible resumption name the real
    problem (they used to say 'give PARENT', 'no checkpoint at OTHER', nothing, and 'history_len differ')."""
    run = tmp_path / "run"
    short_run(run, hopper_file)
    capsys.readouterr()
    other_file = tmp_path / "notes.txt"
    other_file.write_text("")
    assert f"--resume takes a run folder; {other_file} is a file" in error_of(
        ["train", "--resume", str(other_file)], capsys)
    assert f"give {run}" in error_of(["train", "--resume", str(run / "checkpoint.pt")], capsys)
    message = error_of(["train", "--resume", str(run), "--out", str(tmp_path / "other"), "--updates", "8"], capsys)
    assert "continues a run in its own folder" in message and not (tmp_path / "other").exists()
    message = error_of(["train", "--dataset", str(hopper_file), "--seed", "3", "--seeds", "1", "2", "--out",
                        str(tmp_path / "two"), *COMMON], capsys)
    assert "--seed 3 with --seeds 1 2" in message and not (tmp_path / "two").exists()
    assert "incompatible config (history_len 4 asked, 1 saved)" in error_of(
        ["train", "--resume", str(run), "--updates", "8", "--history-len", "4"], capsys)


def test_minari_offline_fails_at_once(monkeypatch, capsys):
    """Offline, a Minari id that is not stored locally fails after one connection attempt, in one line, without
    the hub client's half-minute of retries (its download is never started)."""
    minari = pytest.importorskip("minari")
    import socket

    def refused(address, timeout=None):  # noqa: ANN001
        raise OSError("[Errno -2] Name or service not known")

    def never(*arguments, **options):  # noqa: ANN002, ANN003
        raise AssertionError("the download was attempted")

    monkeypatch.setattr(socket, "create_connection", refused)
    monkeypatch.setattr(minari, "load_dataset", never)
    message = error_of(["data", "info", "mujoco/hopper/medium-v0"], capsys)
    assert "the dataset server cannot be reached: no network? (huggingface.co" in message


def test_a_full_disk_at_the_lock_is_one_line_and_leaves_nothing(tmp_path, hopper_file, capsys, monkeypatch):
    from trajdiff import run_folder

    class FullDisk:
        def __init__(self, handle) -> None:  # noqa: ANN001
            self.handle = handle

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self.handle, name)

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder, "open", lambda *a, **k: FullDisk(open(*a, **k)), raising=False)
    out = tmp_path / "run"
    message = error_of(["train", "--dataset", str(hopper_file), "--updates", "4", "--out", str(out), *COMMON], capsys)
    assert f"cannot write {out / '.lock'} (No space left on device)" in message
    assert not out.exists()


def test_export_onto_a_full_disk_leaves_no_partial_program(tmp_path, hopper_file, capsys, monkeypatch):
    """A disk too full for the program is refused before writing; a write that fails midway (or a process that
    died in it) leaves no policy.pt2, so the next export goes through."""
    import shutil as shutil_module
    from collections import namedtuple

    run = tmp_path / "run"
    short_run(run, hopper_file)
    out = tmp_path / "export"
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert "MiB free on its disk" in error_of(["export", str(run), "--out", str(out)], capsys)
    monkeypatch.undo()

    def torn(program, path):  # noqa: ANN001
        with open(path, "wb") as handle:
            handle.write(b"PK partial")
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch.export, "save", torn)
    assert "cannot write the export" in error_of(["export", str(run), "--out", str(out)], capsys)
    assert sorted(path.name for path in out.iterdir()) == []
    (out / ".export.tmp").mkdir()
    (out / ".export.tmp" / "policy.pt2").write_bytes(b"left by a killed export")
    monkeypatch.undo()
    main(["export", str(run), "--out", str(out)])
    assert sorted(path.name for path in out.iterdir()) == ["policy.json", "policy.pt2", "run_policy.py"]


def test_a_video_into_a_read_only_place_is_one_line(tmp_path, hopper_file, capsys):
    """sysfs refuses new files even to root: the video's path is tried before any rendering, once, in one line."""
    pytest.importorskip("imageio")
    run = tmp_path / "run"
    short_run(run, hopper_file)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["eval", str(run), "--episodes", "1", "--video", "/sys/trajdiff-test.gif", "--device", "cpu"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == "trajdiff: error: cannot write the video /sys/trajdiff-test.gif " \
                                              "(Permission denied)"


def test_a_full_disk_leaves_no_empty_figure(tmp_path, capsys, monkeypatch):
    """matplotlib on a full disk leaves a 0-byte png where it wrote directly; through a temporary file, nothing."""
    from matplotlib.figure import Figure

    def full(self, target, **options):  # noqa: ANN001, ANN003
        Path(target).write_bytes(b"")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    plot = tmp_path / "p.png"
    message = error_of(["data", "info", "default", "--expertise", "--plot", str(plot)], capsys)
    assert f"cannot write the histogram {plot} (No space left on device)" in message
    assert list(tmp_path.iterdir()) == []


def test_help_texts_point_at_pages_that_exist(capsys):
    """--help texts used to send readers to README sections that no longer exist."""
    from trajdiff.cli import _commands

    for words in _commands():
        with pytest.raises(SystemExit):
            main([*words, "--help"])
        text = capsys.readouterr().out
        assert "usage: trajdiff" in text and "README" not in text, words
