import csv
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from trajdiff.bench import baselines
from trajdiff.bench.report import interquartile_mean
from trajdiff.cli import main

FAKE_TRAINER = textwrap.dedent("""
    # Stands in for d3rlpy_train.py: saves a constant-action TorchScript policy at every save point.
    import argparse, json, pathlib, torch
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset"); parser.add_argument("--algorithm"); parser.add_argument("--updates", type=int)
    parser.add_argument("--save-every", type=int); parser.add_argument("--seed", type=int)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    if args.algorithm == "cql":
        raise SystemExit("simulated failure")
    class Constant(torch.nn.Module):
        def forward(self, observations):
            return torch.full((observations.shape[0], 3), 0.1)
    args.out.mkdir(parents=True, exist_ok=True)
    for step in range(args.save_every, args.updates + 1, args.save_every):
        torch.jit.save(torch.jit.script(Constant()), str(args.out / f"policy-{step}.pt"))
    (args.out / "d3rlpy.json").write_text(json.dumps({"train_s": 0.5, "versions": {"d3rlpy": "fake"}}))
""")


def test_smoke_suite_writes_results_and_resumes(tmp_path):
    out = tmp_path / "bench"
    main(["bench", "--suite", "smoke", "--budget", "smoke", "--out", str(out), "--device", "cpu"])
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["method"] for row in rows} == {"trajdiff", "no-history", "one-step", "no-expertise", "diffusion-ql"}
    for row in rows:
        assert row["dataset"] == "default" and row["seed"] == "0" and row["updates"] == "40"
        assert np.isfinite(float(row["normalized_score"]))
    assert "| trajdiff | default |" in (out / "results.md").read_text()
    assert (out / "learning-curves.png").stat().st_size > 0
    # methods of one history length trained as one batch: history 4 (trajdiff and two ablations), history 1
    batch_sizes = {row["method"]: json.loads((Path(row["run_dir"]) / "config.json").read_text())["members_trained_with"]
                   for row in rows}
    assert batch_sizes == {"trajdiff": 3, "one-step": 3, "no-expertise": 3, "no-history": 2, "diffusion-ql": 2}
    checkpoints = sorted(out.glob("runs/*/*/*/checkpoint.pt"))
    written = [path.stat().st_mtime_ns for path in checkpoints]
    main(["bench", "--suite", "smoke", "--budget", "smoke", "--out", str(out), "--device", "cpu"])
    assert [path.stat().st_mtime_ns for path in checkpoints] == written  # finished runs are not trained again
    assert "| trajdiff | default |" in (out / "results.md").read_text()


def test_interquartile_mean_known_answer():
    iqm, low, high = interquartile_mean(np.array([[1.0], [2.0], [3.0], [4.0]]), reps=200)
    assert iqm == pytest.approx(2.5)
    assert low <= iqm <= high


def test_bench_errors(tmp_path, capsys):
    for arguments, message in ((["--suite", "nope"], "unknown suite"),
                               (["--suite", "hopper", "--data-dir", str(tmp_path)], "missing dataset(s)"),
                               (["--suite", "walker2d-medium-expert", "--data-dir", str(tmp_path)],
                                f"missing dataset(s) {tmp_path / 'walker2d-medium-expert.hdf5'}:"),
                               (["--methods", "magic"], "unknown method(s) magic"),
                               (["--seeds", "0"], "--seeds must be at least 1")):
        with pytest.raises(SystemExit):
            main(["bench", *arguments, "--out", str(tmp_path / "b")])
        assert message in capsys.readouterr().err


def test_baselines_are_trained_out_of_process_and_evaluated_by_trajdiff(tmp_path, monkeypatch, capsys):
    """Orchestration with a stand-in trainer: a row per saved policy, then finished runs are skipped."""
    trainer = tmp_path / "fake_trainer.py"
    trainer.write_text(FAKE_TRAINER)
    monkeypatch.setattr(baselines, "TRAIN_SCRIPT", trainer)
    out = tmp_path / "bench"
    arguments = ["bench", "--suite", "smoke", "--budget", "smoke", "--methods", "bc", "--out", str(out),
                 "--baselines-python", sys.executable]
    main(arguments)
    run_dir = out / "runs" / "default" / "bc" / "seed0"
    with (run_dir / "progress.csv").open() as handle:
        progress = list(csv.DictReader(handle))
    assert [row["step"] for row in progress] == ["20", "40"]  # smoke budget: 40 updates, evaluation every 20
    # the same constant policy, evaluated on the same seeds, twice
    assert progress[0]["return_mean"] == progress[1]["return_mean"] and float(progress[1]["train_s"]) == 0.5
    with (out / "results.csv").open() as handle:
        assert [(row["method"], row["updates"]) for row in csv.DictReader(handle)] == [("bc", "40")]
    assert "baselines in their own virtualenv: d3rlpy fake" in (out / "results.md").read_text()
    written = (run_dir / "progress.csv").stat().st_mtime_ns
    main(arguments)
    assert (run_dir / "progress.csv").stat().st_mtime_ns == written
    policy = baselines.ScriptedPolicy(run_dir / "policy-40.pt")
    actions = policy.act(torch.zeros(1, 4, 2, 11), torch.ones(1, 4, 2, dtype=torch.bool))
    assert torch.equal(actions, torch.full((1, 4, 3), 0.1))

    capsys.readouterr()
    for extra, message in ((["--methods", "cql"], "d3rlpy training of cql failed (exit 1)"),
                           (["--methods", "iql", "--baselines-python", str(tmp_path / "none")], "make baselines-env")):
        with pytest.raises(SystemExit):
            main([*arguments, *extra])
        assert message in capsys.readouterr().err


def test_parallel_workers_run_every_job_and_report_errors(tmp_path, capsys):
    out = tmp_path / "bench"
    arguments = ["bench", "--suite", "smoke", "--budget", "smoke", "--seeds", "2", "--methods", "trajdiff",
                 "diffusion-ql", "--out", str(out), "--device", "cpu", "--workers", "2"]
    main(arguments)
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["method"], row["seed"], row["updates"]) for row in rows] == [
        ("trajdiff", "0", "40"), ("trajdiff", "1", "40"), ("diffusion-ql", "0", "40"), ("diffusion-ql", "1", "40")]
    for row in rows:  # each batch's progress bar went to its first run's folder (seed 0: both seeds in one batch)
        if row["seed"] == "0":
            assert "as one batch of 2 member(s)" in (tmp_path / row["run_dir"] / "bench.log").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*arguments, "--methods", "bc", "--baselines-python", str(tmp_path / "none")])
    assert "make baselines-env" in capsys.readouterr().err
