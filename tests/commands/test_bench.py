import csv
import json
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from trajdiff.bench import baselines
from trajdiff.bench.report import interquartile_mean
from trajdiff.cli import main
from trajdiff.errors import TrajdiffError
from trajdiff.provenance import code_commit, cpu_model

FAKE_TRAINER = textwrap.dedent("""
    # Stands in for d3rlpy_train.py: saves a constant-action TorchScript policy at every save point.
    import argparse, json, pathlib, torch
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset"); parser.add_argument("--algorithm"); parser.add_argument("--updates", type=int)
    parser.add_argument("--save-every", type=int); parser.add_argument("--seed", type=int)
    parser.add_argument("--out", type=pathlib.Path); parser.add_argument("--start", type=json.loads)
    args = parser.parse_args()
    if args.algorithm == "cql":
        raise SystemExit("simulated failure")
    class Constant(torch.nn.Module):
        def forward(self, observations):
            return torch.full((observations.shape[0], 3), 0.1)
    args.out.mkdir(parents=True, exist_ok=True)
    for step in range(args.save_every, args.updates + 1, args.save_every):
        torch.jit.save(torch.jit.script(Constant()), str(args.out / f"policy-{step}.pt"))
    (args.out / "d3rlpy.json").write_text(json.dumps({"train_s": 0.5, "versions": {"d3rlpy": "fake"},
                                                      "starts": [{"at_update": 0, **args.start}]}))
""")


def test_smoke_suite_writes_results_and_resumes(tmp_path):
    out = tmp_path / "bench"
    def results() -> list[dict[str, str]]:
        with (out / "results.csv").open() as handle:
            return list(csv.DictReader(handle))

    main(["bench", "--suite", "smoke", "--budget", "smoke", "--out", str(out), "--device", "cpu", "--stop-at", "20"])
    assert {row["updates"] for row in results()} == {"20"}  # stopped half way, checkpointed
    assert "40 updates, 1 seed(s), 2 evaluation episodes), as of update 20" in (out / "results.md").read_text()
    main(["bench", "--suite", "smoke", "--budget", "smoke", "--out", str(out), "--device", "cpu"])  # goes on to 40
    rows = results()
    assert {row["method"] for row in rows} == {"trajdiff", "no-history", "one-step", "no-expertise", "diffusion-ql"}
    for row in rows:
        assert row["dataset"] == "default" and row["seed"] == "0" and row["updates"] == "40"
        assert np.isfinite(float(row["normalized_score"]))
    assert "| trajdiff | default |" in (out / "results.md").read_text()
    assert "| method | dataset | spread of last 5 | largest fall from best |" in (out / "results.md").read_text()
    for row in rows:  # a barely trained hopper falls: its critic's values can be judged against exact returns
        assert np.isfinite(float(row["q_bias"])) and np.isfinite(float(row["action_change"]))
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


def test_intervals_do_not_depend_on_numpys_global_generator():
    """rliable draws its bootstrap from np.random: the report seeds it for the call and leaves it as it was."""
    from trajdiff.bench.report import probability_of_improvement

    scores, other = np.array([[1.0], [5.0], [2.0], [9.0], [4.0]]), np.array([[3.0], [2.0], [6.0], [1.0], [0.0]])
    answers = []
    for seed in (1, 2):
        np.random.seed(seed)
        answers.append((interquartile_mean(scores, reps=200), probability_of_improvement(scores, other, reps=200)))
        assert np.random.randint(1 << 30) == np.random.RandomState(seed).randint(1 << 30)  # left untouched
    assert answers[0] == answers[1]


def test_bench_errors(tmp_path, capsys):
    for arguments, message in ((["--suite", "nope"], "unknown suite"),
                               (["--suite", "hopper", "--data-dir", str(tmp_path)], "missing dataset(s)"),
                               (["--suite", "walker2d-medium-expert", "--data-dir", str(tmp_path)],
                                f"missing dataset(s) {tmp_path / 'walker2d-medium-expert.hdf5'}:"),
                               (["--methods", "magic"], "unknown method(s) magic"),
                               (["--seeds", "0"], "--seeds must be at least 1"),
                               (["--stop-at", "41"], "--stop-at must be in 1..40 (the smoke budget's updates)"),
                               (["--stop-at", "30"], "--stop-at must be a multiple of 20")):
        with pytest.raises(SystemExit):
            main(["bench", *arguments, "--out", str(tmp_path / "b")])
        assert message in capsys.readouterr().err


def test_baselines_are_trained_out_of_process_and_evaluated_by_trajdiff(tmp_path, monkeypatch, capsys):
    """Orchestration with a stand-in trainer: a row per saved policy, the start recorded (the report's
    provenance), then finished runs are skipped."""
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
    report = (out / "results.md").read_text()
    assert "baselines in their own virtualenv: d3rlpy fake" in report
    started = f"| bc | 0-40 | 1 | {code_commit()[:7]} | {cpu_model()} | none | `trajdiff {shlex.join(arguments)}` |"
    assert started in report
    written = (run_dir / "progress.csv").stat().st_mtime_ns
    main(arguments)
    assert (run_dir / "progress.csv").stat().st_mtime_ns == written
    policy = baselines.ScriptedPolicy(run_dir / "policy-40.pt")
    actions, values = policy.act(torch.zeros(1, 4, 2, 11), torch.ones(1, 4, 2, dtype=torch.bool))
    assert torch.equal(actions, torch.full((1, 4, 1, 3), 0.1)) and values is None

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


def test_run_summary_final_last_five_and_best(tmp_path):
    from trajdiff.commands.bench import Job, run_summary

    run = tmp_path / "run"
    run.mkdir()
    scores = [1, 2, 3, 4, 5, 6, 10, 0]
    with (run / "progress.csv").open("w") as handle:
        handle.write("step,normalized_score,return_mean,wall_s\n")
        handle.writelines(f"{(i + 1) * 10},{score},{score * 30},{i}\n" for i, score in enumerate(scores))
    row = run_summary(Job("data/hopper-medium-expert.hdf5", "trajdiff", 0, run))
    assert (row["normalized_score"], row["last5_normalized_score"], row["best_normalized_score"]) == (0, 5, 10)
    assert row["updates"] == 80 and row["dataset"] == "hopper-medium-expert"
    # the last five are 4, 5, 6, 10, 0 at 40..80: least-squares slope -0.03 per update over a span of 40
    assert row["last5_spread"] == pytest.approx(np.std([4, 5, 6, 10, 0])) and row["largest_fall"] == 10
    assert row["last5_change"] == pytest.approx(-1.2)
    assert (row["q_bias"], row["q_correlation"], row["action_change"]) == ("", "", "")  # not recorded in this file
    early = run_summary(Job("data/hopper-medium-expert.hdf5", "trajdiff", 0, run), at_step=60)  # as if it ended there
    assert (early["normalized_score"], early["last5_normalized_score"], early["best_normalized_score"]) == (6, 4, 6)
    assert early["updates"] == 60 and early["return_mean"] == 180
    assert early["largest_fall"] == 0 and early["last5_change"] == pytest.approx(4.0)  # 2..6, one a step
    with (run / "progress.csv").open("w") as handle:
        handle.write("step,normalized_score,return_mean,eval_q_bias,eval_q_correlation,eval_action_change\n")
        handle.writelines(f"{(i + 1) * 10},{score},0,{score},0.5,{i}\n" for i, score in enumerate(scores))
    row = run_summary(Job("d.hdf5", "trajdiff", 0, run))
    assert (row["q_bias"], row["q_correlation"], row["action_change"]) == (5, 0.5, 5)  # means of the last five
    for not_evaluated in (65, 90):
        with pytest.raises(TrajdiffError, match=f"no evaluation at update {not_evaluated} .*its last is at 80"):
            run_summary(Job("d.hdf5", "trajdiff", 0, run), at_step=not_evaluated)


def test_diffusion_ql_takes_the_authors_settings_for_the_dataset_type():
    from trajdiff.bench.budgets import BUDGETS, Budget
    from trajdiff.commands.bench import SUITES, BenchConfig, Job, trajdiff_config

    def config(method, dataset):
        return trajdiff_config(Job(dataset, method, 0, Path("x")), BUDGETS["gpu"], BenchConfig(device="cpu"))

    published = config("diffusion-ql", "d/hopper-medium-expert.hdf5")
    assert published.agent.grad_norm == 5.0 and published.agent.lr_decay == "diffusion-ql"
    assert config("diffusion-ql", "d/halfcheetah-medium-expert.hdf5").agent.grad_norm == 7.0
    assert config("diffusion-ql", "d/hopper-medium-replay.hdf5").agent.grad_norm == 4.0
    imitation = config("diffusion-ql-eta0", "d/walker2d-medium-expert.hdf5")
    assert imitation.agent.eta == 0.0 and imitation.agent.grad_norm == 5.0
    unpublished = config("diffusion-ql", "d/hopper-random.hdf5")  # no published setting: trajdiff's defaults
    assert unpublished.agent.grad_norm == 9.0 and unpublished.agent.lr_decay == "none"
    assert config("trajdiff", "d/hopper-medium-expert.hdf5").agent.grad_norm == 9.0
    for method in ("history-8", "history-8-critic", "frames-8"):  # Diffusion-QL plus history: the same settings
        with_history = config(method, "d/walker2d-medium.hdf5").agent
        assert (with_history.grad_norm, with_history.lr_decay, with_history.history_len) == (1.0, "diffusion-ql", 8)
    assert SUITES["evidence"][0] == "hopper-medium-expert.hdf5" and len(SUITES["evidence"]) == 4
    assert BUDGETS["gpu"] == Budget(updates=200_000, eval_every=10_000, eval_episodes=10, seeds=5)


def test_evidence_suite_end_to_end_and_report_from_progress_files_alone(tmp_path, capsys):
    """The GPU evidence suite at the smoke budget on tiny random-policy datasets of the four kinds; then the
    report rebuilt from a copy holding only progress.csv and config.json is the same."""
    import shutil

    from trajdiff.collect.datasets import rollouts
    from trajdiff.data import EpisodeDataset, write_d4rl_hdf5

    data = tmp_path / "datasets"
    for name, env_id in (("hopper-medium-expert", "Hopper-v5"), ("hopper-medium-replay", "Hopper-v5"),
                         ("walker2d-medium-expert", "Walker2d-v5"), ("halfcheetah-medium-expert", "HalfCheetah-v5")):
        steps = 2000 if env_id.startswith("HalfCheetah") else 300  # its episodes never end early: two of 1000
        arrays, _ = rollouts(env_id, None, steps, seed=0, num_envs=2)
        arrays.pop("qpos"), arrays.pop("qvel")
        write_d4rl_hdf5(data / f"{name}.hdf5", EpisodeDataset.from_arrays(arrays, metadata={"env_id": env_id}))
    out = tmp_path / "bench"
    arguments = ["bench", "--suite", "evidence", "--budget", "smoke", "--seeds", "2", "--methods", "trajdiff",
                 "diffusion-ql", "diffusion-ql-eta0", "--data-dir", str(data), "--out", str(out), "--device", "cpu"]
    main(arguments)
    report = (out / "results.md").read_text()
    assert "| trajdiff | halfcheetah-medium-expert | 2 |" in report and "| P(trajdiff > diffusion-ql) |" in report
    assert (out / "performance-profiles.png").stat().st_size > 0 and (out / "learning-curves.png").stat().st_size > 0
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 3 * 2 and all(float(row["best_normalized_score"]) >= float(row["normalized_score"])
                                          for row in rows)
    copy = tmp_path / "copy"
    for path in (out / "runs").rglob("*"):
        if path.name in ("progress.csv", "config.json"):
            target = copy / "runs" / path.relative_to(out / "runs")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    capsys.readouterr()
    main([*arguments[:-6], "--out", str(copy), "--report-only", "--data-dir", str(tmp_path / "gone")])
    rebuilt = (copy / "results.md").read_text()
    assert rebuilt == report.replace(str(out), str(copy)).replace(f"--out {copy}", f"--out {out}")  # as it ran
    for figure in ("performance-profiles.png", "learning-curves.png"):  # bootstrap bands seeded: the same bytes
        assert (copy / figure).read_bytes() == (out / figure).read_bytes()
    main([*arguments[:-6], "--out", str(copy), "--report-only", "--at-step", "20"])  # the first evaluation
    assert "as of update 20" in (copy / "results.md").read_text()
    with (copy / "results.csv").open() as handle:
        assert {row["updates"] for row in csv.DictReader(handle)} == {"20"}


def test_member_batches_group_by_shapes():
    """Methods whose networks have the same shapes share a batch; the partial-observability ones do not."""
    from trajdiff.bench.budgets import BUDGETS
    from trajdiff.commands.bench import BenchConfig, Job, member_batches

    methods = ("diffusion-ql", "diffusion-ql-eta0", "history-8", "history-8-critic", "frames-8", "trajdiff",
               "one-step", "no-expertise")
    jobs = [Job("d/hopper-medium-expert.hdf5", method, seed, Path("/nonexistent") / method / str(seed))
            for method in methods for seed in range(2)]
    batches = member_batches(jobs, BUDGETS["smoke"], BenchConfig(observe="positions"))
    grouped = sorted(sorted({job.method for job in batch}) for batch in batches)
    assert grouped == [["diffusion-ql", "diffusion-ql-eta0"], ["frames-8"], ["history-8"], ["history-8-critic"],
                       ["no-expertise", "one-step", "trajdiff"]]
    assert all(len(batch) == 2 * len({job.method for job in batch}) for batch in batches)


def test_ray_backend_finds_the_rows_of_the_local_backend(tmp_path):
    pytest.importorskip("ray")
    rows = {}
    for backend in ("local", "ray"):
        out = tmp_path / backend
        main(["bench", "--suite", "smoke", "--budget", "smoke", "--methods", "trajdiff", "diffusion-ql",
              "--out", str(out), "--device", "cpu", "--backend", backend])
        with (out / "results.csv").open() as handle:
            rows[backend] = [(row["method"], row["dataset"], row["seed"], row["updates"])
                             for row in csv.DictReader(handle)]
        if backend == "ray":  # each task's progress went to its batch's log
            assert "as one batch of 1 member(s)" in (out / "runs/default/trajdiff/seed0/bench.log").read_text()
    assert rows["ray"] == rows["local"] == [("trajdiff", "default", "0", "40"), ("diffusion-ql", "default", "0", "40")]


def test_the_approximated_modifier_applies_to_any_trajdiff_method():
    """METHOD-approximated is METHOD with --q-action approximated, the authors' settings included; it trains in a
    batch of its own (the actor's update differs), and a baseline or unknown name with it is an error."""
    import dataclasses

    from trajdiff.bench.budgets import BUDGETS
    from trajdiff.bench.methods import find_method
    from trajdiff.commands.bench import BenchConfig, Job, member_batches, trajdiff_config

    history_critic = find_method("history-8-critic")
    assert find_method("history-8-critic-approximated") == dataclasses.replace(
        history_critic, agent=dataclasses.replace(history_critic.agent, q_action="approximated"))
    assert history_critic.agent.q_action == "sampled"
    assert find_method("bc-approximated") is None and find_method("nope") is None
    job = Job("d/hopper-medium-expert.hdf5", "diffusion-ql-approximated", 0, Path("/nonexistent"))
    config = trajdiff_config(job, BUDGETS["smoke"], BenchConfig())
    assert config.agent.q_action == "approximated" and config.agent.grad_norm == 5.0  # the authors' clip
    jobs = [Job("d/hopper-medium-expert.hdf5", method, 0, Path("/nonexistent") / method)
            for method in ("diffusion-ql", "diffusion-ql-approximated")]
    assert len(member_batches(jobs, BUDGETS["smoke"], BenchConfig())) == 2


def fake_bench_folder(folder: Path, dataset: str, observe: str, scores: dict[str, float], updates: int = 20) -> None:
    """A bench folder as --report-only needs it: per method 3 seeds of progress.csv (two evaluations, the last
    at ``updates`` and at the method's score plus the seed) and config.json, and the results.csv that bench
    writes."""
    from trajdiff.commands.bench import Job, run_summary

    rows = []
    for method, score in scores.items():
        for seed in range(3):
            run_dir = folder / "runs" / dataset / method / f"seed{seed}"
            run_dir.mkdir(parents=True)
            (run_dir / "config.json").write_text(json.dumps({"observe": observe, "schedule": {"updates": updates}}))
            (run_dir / "progress.csv").write_text(f"step,normalized_score,return_mean\n{updates // 2},0,0\n"
                                                  f"{updates},{score + seed},0\n")
            rows.append(run_summary(Job(f"{dataset}.hdf5", method, seed, run_dir)))
    with (folder / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_the_reports_provenance_is_each_runs_record_of_its_starts(tmp_path):
    """Known answer: starts alike but for --stop-at make one stretch; a start killed before its first checkpoint
    (the next resumes where it did) keeps nothing; two runs alike count as 2; a run without starts is "not
    recorded", and no run with starts means no table; a d3rlpy baseline's starts are read from its d3rlpy.json."""
    from trajdiff.bench.report import provenance

    def start(at: int, commit: str, stop: int) -> dict:
        return {"at_update": at, "code_commit": commit * 40, "cpu": "CPU X", "gpu": None,
                "command": f"trajdiff bench --out x --stop-at {stop} --device cpu"}

    starts = [start(0, "a", 5000), start(5000, "a", 10000), start(10000, "b", 15000), start(10000, "b", 15000)]
    rows = []
    for seed, recorded in enumerate((starts, starts, [])):
        run = tmp_path / f"seed{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"starts": recorded} if recorded else {}))
        rows.append({"method": "m", "run_dir": str(run), "updates": "15000"})
    assert provenance(rows)[-3:] == [
        "| m | 0-10,000 | 2 | aaaaaaa | CPU X | none | `trajdiff bench --out x --device cpu` |",
        "| m | 10,000-15,000 | 2 | bbbbbbb | CPU X | none | `trajdiff bench --out x --device cpu` |",
        "| m | 0-15,000 | 1 | not recorded | not recorded | not recorded | not recorded |"]
    assert provenance(rows[2:]) == []
    baseline = tmp_path / "baseline"  # a d3rlpy run's record; one started by hand says where it began alone
    baseline.mkdir()
    (baseline / "d3rlpy.json").write_text(json.dumps({"starts": [start(0, "c", 10000), {"at_update": 10000}]}))
    assert provenance([{"method": "iql", "run_dir": str(baseline), "updates": "15000"}])[-2:] == [
        "| iql | 0-10,000 | 1 | ccccccc | CPU X | none | `trajdiff bench --out x --device cpu` |",
        "| iql | 10,000-15,000 | 1 | unknown | unknown | none | `unknown` |"]


def test_combined_report_spans_settings_of_several_bench_folders(tmp_path, capsys):
    fake_bench_folder(tmp_path / "a", "hopper-medium", "positions", {"diffusion-ql": 10, "history-8": 20})
    fake_bench_folder(tmp_path / "b", "walker2d-medium", "all", {"diffusion-ql": 5, "history-8": 30, "frames-8": 1})
    main(["bench", "--combine", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both")])
    report = (tmp_path / "both" / "results.md").read_text()
    assert "| history-8 | hopper-medium (positions) | 3 | 21.0 ± 0.8 |" in report
    assert "| frames-8 | walker2d-medium | 3 | 2.0 ± 0.8 |" in report
    assert "| P(history-8 > diffusion-ql) | 1.00 [1.00, 1.00] |" in report  # every run above, on both settings
    assert "| frames-8 | " not in report.split("IQM of final over datasets")[1]  # not run on every setting
    with (tmp_path / "both" / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 15
    with pytest.raises(SystemExit):
        main(["bench", "--combine", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "twice")])
    assert "is in both" in capsys.readouterr().err


def test_reports_refuse_labels_that_the_runs_contradict(tmp_path, capsys):
    """--report-only labels runs with --observe and --budget; --combine pools runs of one budget only."""
    folder = tmp_path / "smoke"
    fake_bench_folder(folder, "default", "positions", {"diffusion-ql": 10}, updates=40)  # the smoke budget
    main(["bench", "--suite", "smoke", "--budget", "smoke", "--methods", "diffusion-ql", "--seeds", "3",
          "--observe", "positions", "--report-only", "--out", str(folder)])
    assert (folder / "results.md").is_file()
    capsys.readouterr()
    for labels, said in ((["--observe", "velocities", "--budget", "smoke"], "trained with --observe positions"),
                         (["--observe", "positions", "--budget", "cpu"], "is 10,000 updates, but")):
        with pytest.raises(SystemExit) as stopped:
            main(["bench", "--suite", "smoke", "--methods", "diffusion-ql", "--seeds", "3", *labels,
                  "--report-only", "--out", str(folder)])
        assert stopped.value.code == 2
        error = capsys.readouterr().err
        assert said in error and len(error.strip().splitlines()) == 1
    fake_bench_folder(tmp_path / "longer", "walker2d-medium", "all", {"diffusion-ql": 5}, updates=80)
    with pytest.raises(SystemExit) as stopped:
        main(["bench", "--combine", str(folder), str(tmp_path / "longer"), "--out", str(tmp_path / "both")])
    assert stopped.value.code == 2 and "combine runs of one budget" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()


def test_a_report_refuses_runs_short_of_the_budget(tmp_path, capsys):
    """Known answer: one run stopped at 20 of the smoke budget's 40 updates; without --at-step the report would
    put its evaluation at 20 beside the others' at 40 under a 40-update heading."""
    folder = tmp_path / "smoke"
    fake_bench_folder(folder, "default", "all", {"diffusion-ql": 10}, updates=40)
    progress = folder / "runs" / "default" / "diffusion-ql" / "seed1" / "progress.csv"
    progress.write_text("".join(progress.read_text().splitlines(keepends=True)[:2]))  # its evaluation at 20 only
    command = ["bench", "--suite", "smoke", "--budget", "smoke", "--methods", "diffusion-ql", "--seeds", "3",
               "--report-only", "--out", str(folder)]
    with pytest.raises(SystemExit) as stopped:
        main(command)
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and len(error.strip().splitlines()) == 1
    assert "seed1 has no evaluation at update 40 (its last is at 20)" in error and "--at-step N" in error
    main([*command, "--at-step", "20"])  # every run has its evaluation at 20
    assert "as of update 20" in (folder / "results.md").read_text()


def test_the_recommended_configuration_has_one_component_per_part():
    """NAME-no-history, NAME-one-step and NAME-no-expertise are the recommended method with that part back at
    Diffusion-QL's value and every other field as it is, the authors' settings included (removing the multi-step
    critic also removes a chunk or a lambda target, which AgentConfig refuses with n_step 1)."""
    import dataclasses

    from trajdiff.bench.methods import METHODS, RECOMMENDED, without_each_part

    for name in ("trajdiff-nstep", "trajdiff-chunk", "trajdiff-lambda"):
        full = METHODS[name]
        parts = without_each_part(name)
        assert set(parts) == {f"{name}-no-history", f"{name}-one-step", f"{name}-no-expertise"}
        for component, fields in ((parts[f"{name}-no-history"], {"history_len": 1}),
                                  (parts[f"{name}-no-expertise"], {"expertise_weighting": False}),
                                  (parts[f"{name}-one-step"], {"n_step": 1, "action_chunk": 1,
                                                               "critic_target": "nstep", "td_lambda": 0.5})):
            assert component.authors_settings and component.agent == dataclasses.replace(full.agent, **fields)
    assert all(METHODS[name] == method for name, method in without_each_part(RECOMMENDED).items())
