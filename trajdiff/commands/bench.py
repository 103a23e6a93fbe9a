"""``trajdiff bench``: trajdiff against its ablations, Diffusion-QL and d3rlpy baselines on the same data and budget."""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from trajdiff.agent import shared_values
from trajdiff.bench.baselines import BASELINES, run_baseline
from trajdiff.bench.budgets import BUDGETS, Budget
from trajdiff.bench.methods import APPROXIMATED, DEFAULT_METHODS, METHODS, find_method
from trajdiff.bench.report import write_report
from trajdiff.checkpoint import CHECKPOINT_NAME, load_checkpoint
from trajdiff.collect.datasets import KINDS, suite_file_name
from trajdiff.commands.train import environment_for, train_members
from trajdiff.commands.train_config import RunSchedule, TrainConfig
from trajdiff.data.load import EMBEDDED_DEFAULT, load_dataset
from trajdiff.envs import Observe
from trajdiff.errors import Terminated, TrajdiffError, end_with_parent
from trajdiff.files import write_csv
from trajdiff.measures import PROGRESS_COLUMNS
from trajdiff.runlog import progress_bar

FAMILIES = ("hopper", "halfcheetah", "walker2d")
SUITES: dict[str, list[str]] = {
    "smoke": ["default"],
    **{family: [suite_file_name(family, kind) for kind in KINDS] for family in FAMILIES},
    **{f"{family}-{kind}": [suite_file_name(family, kind)] for family in FAMILIES for kind in KINDS},
    "evidence": [suite_file_name("hopper", "medium-expert"), suite_file_name("hopper", "medium-replay"),
                 suite_file_name("walker2d", "medium-expert"), suite_file_name("halfcheetah", "medium-expert")],
}
"""Suite -> datasets: 'default' is the embedded dataset, file names are read from --data-dir, named as
`trajdiff collect suite` writes them. 'hopper' is all five kinds; 'hopper-KIND' is one (a dataset at a
time fits the cpu budget's hour); likewise for halfcheetah and walker2d. 'evidence' is the four datasets of
the GPU evidence run (docs/bench.md), hopper first."""


@dataclass(frozen=True)
class BenchConfig:
    """Run methods x datasets x seeds with one budget, resuming unfinished runs, then aggregate."""

    suite: str = "smoke"
    """smoke; hopper, halfcheetah or walker2d (all five datasets of the family); or one of them, FAMILY-KIND
    with KIND one of random, medium, medium-replay, expert, medium-expert."""
    budget: Literal["smoke", "cpu", "cpu-20k", "cpu-50k", "gpu", "paper"] = "smoke"
    """Updates, evaluation cadence and default seeds (docs/bench.md lists the budgets)."""
    out: Path = Path("runs/bench")
    """Folder for the runs, results.csv, results.md and learning-curves.png."""
    seeds: int | None = None
    """Seeds per method and dataset (default: the budget's)."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Methods to run: trajdiff, its ablations and diffusion-ql (the default); diffusion-ql-eta0; and the
    d3rlpy baselines bc, td3+bc, iql, cql (these need `make baselines-env`)."""
    data_dir: Path = Path("datasets")
    """Where the suite's hdf5 files are (as written by trajdiff collect suite)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    baselines_python: Path = Path(".venv-baselines/bin/python")
    """The interpreter with d3rlpy 2.8.1 that trains the baselines (made by `make baselines-env`)."""
    observe: Observe = "all"
    """What the agents see of each observation (all, positions or velocities; docs/partial-observability.md)."""
    backend: Literal["local", "ray"] = "local"
    """Where batches run: here (--workers at a time), or as Ray tasks (pip install 'trajdiff[ray]')."""
    address: str | None = None
    """With --backend ray: the cluster to join (what `ray start --head` prints); default a Ray instance on this
    machine. --out and --data-dir must be on storage that every node sees."""
    report_only: bool = False
    """Train nothing: rebuild results.csv, results.md and the figures from the runs' progress.csv files (a
    copy of OUT/runs with only those files, such as the committed docs/results, is enough)."""
    combine: tuple[Path, ...] = ()
    """Train nothing: write one report in --out over the runs of these earlier bench folders (each one's
    results.csv and the runs it names), each dataset named with the folder's --observe, so that the IQM and
    the probability of improvement span settings that one suite cannot hold (--suite and --budget unused)."""
    at_step: int | None = None
    """Report every run as of its evaluation at this update, not its last one: with --report-only, compares
    methods at one budget while their runs are still going (each run must have reached it)."""
    stop_at: int | None = None
    """Train every run only up to this update (checkpointed; the same command without it, or with a later
    one, continues): the budget's --updates still sets each run's schedule."""
    compile_update: bool = False
    """Compile every run's update with torch.compile (faster on a CPU after a minute or two; see train)."""
    workers: int = 1
    """Batches at once, in separate processes sharing the CPU threads (or one GPU) between them. A batch is a
    baseline run, or every trajdiff method and seed that can train as one batched update (same dataset and
    history length)."""


def run_bench(config: BenchConfig) -> None:
    if config.combine:
        combine_reports(config.combine, config.out)
        return
    if config.suite not in SUITES:
        raise TrajdiffError(f"unknown suite {config.suite!r} ({', '.join(SUITES)})")
    unknown = [method for method in config.methods if find_method(method) is None and method not in BASELINES]
    if unknown:
        raise TrajdiffError(f"unknown method(s) {', '.join(unknown)} ({', '.join([*METHODS, *BASELINES])}; a "
                            f"trajdiff method may end in {APPROXIMATED})")
    budget = BUDGETS[config.budget]
    seeds = budget.seeds if config.seeds is None else config.seeds
    if config.workers < 1:
        raise TrajdiffError("--workers must be at least 1")
    if config.stop_at is not None and not 1 <= config.stop_at <= budget.updates:
        raise TrajdiffError(f"--stop-at must be in 1..{budget.updates} (the {config.budget} budget's updates)")
    if config.stop_at is not None and config.stop_at % budget.eval_every:
        raise TrajdiffError(f"--stop-at must be a multiple of {budget.eval_every} (the {config.budget} budget's "
                            "evaluation interval): the report needs an evaluation there")
    if seeds < 1 or not config.methods:
        raise TrajdiffError("--seeds must be at least 1 and --methods must name at least one method")
    datasets = [name if name == "default" else str(config.data_dir / name) for name in SUITES[config.suite]]
    jobs = [Job(dataset, method, seed, config.out / "runs" / Path(dataset).stem / method / f"seed{seed}")
            for dataset in datasets for method in config.methods for seed in range(seeds)]
    if config.report_only:
        unfinished = [str(job.run_dir) for job in jobs if not (job.run_dir / "progress.csv").is_file()]
        if unfinished:
            raise TrajdiffError(f"--report-only: no progress.csv in {', '.join(unfinished[:3])}"
                                f"{f' and {len(unfinished) - 3} more' if len(unfinished) > 3 else ''}")
        check_labels(jobs, config.observe, config.budget, budget.updates)
    else:
        missing = [name for name in datasets if name != "default" and not Path(name).is_file()]
        if missing:
            raise TrajdiffError(f"missing dataset(s) {', '.join(missing)}: build them with "
                                f"trajdiff collect suite --from RUN_DIR --out {config.data_dir}")
        batches = member_batches(jobs, budget, config)
        if config.backend == "ray":
            run_on_ray(batches, budget, config)
        elif config.workers <= 1:
            for batch in batches:
                run_batch(batch, budget, config)
        else:
            run_in_parallel(batches, budget, config)
    # a stopped bench reports as of its stop, also for runs an earlier call took further; a finished one as of the
    # budget's updates, refusing runs short of them rather than putting their last evaluations beside the others'
    at_step = config.stop_at if config.at_step is None else config.at_step
    rows = [run_summary(job, budget.updates if at_step is None else at_step) for job in jobs]
    write_csv(config.out / "results.csv", rows)
    as_of = "" if at_step is None else f", as of update {at_step:,}"
    write_report(rows, config.out, f"suite {config.suite}, budget {config.budget} ({budget.updates:,} updates, "
                                   f"{seeds} seed(s), {budget.eval_episodes} evaluation episodes){as_of}")
    print((config.out / "results.md").read_text())


def check_labels(jobs: list[Job], observe: str, budget_name: str, updates: int) -> None:
    """A report labels its runs with --observe and --budget: refuse labels that their config.json contradicts."""
    for job in jobs:
        record_path = job.run_dir / "config.json"
        if not record_path.is_file():  # a d3rlpy baseline: full observations, the bench's budget
            continue
        record = json.loads(record_path.read_text())
        if record.get("observe", "all") != observe:
            raise TrajdiffError(f"--observe {observe}, but {job.run_dir} trained with --observe {record['observe']}")
        trained = record.get("schedule", {}).get("updates")
        if trained is not None and trained != updates:
            raise TrajdiffError(f"--budget {budget_name} is {updates:,} updates, but {job.run_dir} trained for "
                                f"{trained:,}")


def combine_reports(folders: tuple[Path, ...], out: Path) -> None:
    """One report over the results.csv rows of several bench folders, a dataset seen through --observe X named
    'DATASET (X)'."""
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str], Path] = {}
    budgets: dict[int, Path] = {}
    for folder in folders:
        try:
            with (folder / "results.csv").open() as handle:
                found = list(csv.DictReader(handle))
        except OSError as error:
            reason = error.strerror or error
            raise TrajdiffError(f"--combine {folder}: cannot read its results.csv ({reason})") from None
        for row in found:
            record = Path(row["run_dir"]) / "config.json"
            if not record.is_file():
                raise TrajdiffError(f"--combine {folder}: {record} is missing (the report needs each run's "
                                    "config.json and progress.csv)")
            saved = json.loads(record.read_text())
            observe = saved.get("observe", "all")
            if saved.get("schedule", {}).get("updates") is not None:
                budgets.setdefault(saved["schedule"]["updates"], folder)
            if len(budgets) > 1:
                (first, first_folder), (second, second_folder) = list(budgets.items())[:2]
                raise TrajdiffError(f"--combine: {first_folder} holds runs of {first:,} updates and {second_folder} "
                                    f"of {second:,}; combine runs of one budget")
            setting = row["dataset"] if observe == "all" else f"{row['dataset']} ({observe})"
            run = (row["method"], setting, row["seed"])
            if run in seen:
                raise TrajdiffError(f"--combine: {row['method']} seed {row['seed']} on {setting} is in both "
                                    f"{seen[run]} and {folder}; name each run once")
            seen[run] = folder
            rows.append({**{key: value if key in TEXT_COLUMNS or value == "" else float(value)
                            for key, value in row.items()}, "dataset": setting})
    if not rows:
        raise TrajdiffError("--combine: the folders hold no runs")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", rows)
    settings = list(dict.fromkeys(row["dataset"] for row in rows))
    write_report(rows, out, f"{len(settings)} settings ({', '.join(settings)})")
    print((out / "results.md").read_text())


TEXT_COLUMNS = ("method", "dataset", "run_dir")
"""results.csv columns that are not numbers."""


@dataclass(frozen=True)
class Job:
    """One run of the suite: a method on a dataset with a seed, in its own folder."""

    dataset: str
    method: str
    seed: int
    run_dir: Path


def trajdiff_config(job: Job, budget: Budget, config: BenchConfig) -> TrainConfig:
    """The TrainConfig of a trajdiff method's run (resuming what an earlier call left unfinished)."""
    schedule = RunSchedule(updates=budget.updates, eval_every=budget.eval_every, eval_episodes=budget.eval_episodes,
                           checkpoint_every=budget.eval_every, stop_at=config.stop_at, device=config.device,
                           compile_update=config.compile_update)
    method = find_method(job.method)
    assert method is not None, job.method  # run_bench refused unknown methods
    return TrainConfig(dataset=job.dataset, out=job.run_dir, seed=job.seed, schedule=schedule, tensorboard=False,
                       observe=config.observe, agent=method.config_for(job.dataset))


def saved_step(run_dir: Path) -> int:
    return load_checkpoint(run_dir)["step"] if (run_dir / CHECKPOINT_NAME).is_file() else 0


def member_batches(jobs: list[Job], budget: Budget, config: BenchConfig) -> list[list[Job]]:
    """The jobs left to run, as batches: a baseline alone; trajdiff methods that can share one batched update
    (same dataset, same shapes: every AgentConfig field members may not differ in, at the same saved step)
    together, seeds and ablations alike."""
    batches: dict[tuple, list[Job]] = {}
    for job in jobs:
        if job.method in BASELINES:
            batches[(job,)] = [job]
            continue
        step, train_config = saved_step(job.run_dir), trajdiff_config(job, budget, config)
        if step >= train_config.schedule.end:
            continue
        shapes = tuple(shared_values(train_config.agent).values())
        batches.setdefault((job.dataset, shapes, step), []).append(job)
    return list(batches.values())


def run_batch(batch: list[Job], budget: Budget, config: BenchConfig) -> None:
    """Run one batch to completion: a d3rlpy baseline, or trajdiff members trained as one."""
    job = batch[0]
    if job.method in BASELINES:
        data_file = EMBEDDED_DEFAULT if job.dataset == "default" else Path(job.dataset)
        env_id = environment_for(load_dataset(job.dataset), None)
        run_baseline(data_file, job.method, job.seed, job.run_dir, budget, env_id, config.baselines_python)
        return
    print(f"bench: {Path(job.dataset).stem}: {', '.join(f'{j.method} seed {j.seed}' for j in batch)} "
          f"as one batch of {len(batch)} member(s)", file=sys.stderr)
    train_members([trajdiff_config(j, budget, config) for j in batch],
                  resume=(job.run_dir / CHECKPOINT_NAME).is_file())


def run_in_parallel(batches: list[list[Job]], budget: Budget, config: BenchConfig) -> None:
    """Run batches in ``config.workers`` processes, each with its share of the CPU threads.

    Every batch's progress bar and messages go to bench.log in its first run's folder; one bar here counts batches.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // config.workers)
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and CUDA state
    with ProcessPoolExecutor(config.workers, mp_context=context, initializer=end_with_parent) as pool:
        futures = [pool.submit(_run_batch_logged, batch, budget, config, threads) for batch in batches]
        for future in progress_bar(as_completed(futures), total=len(futures), desc=f"bench ({config.workers} workers)",
                           unit="batch"):
            future.result()  # re-raises a batch's error here, with its one-line message


def run_on_ray(batches: list[list[Job]], budget: Budget, config: BenchConfig) -> None:
    """Every batch as a Ray task that declares what it needs: one CPU, and on CUDA a share of a GPU (up to four
    batches on one card); logs go to bench.log as with --workers. A task's error is re-raised here in one line."""
    try:
        import ray
    except ImportError:
        raise TrajdiffError("--backend ray needs Ray: pip install 'trajdiff[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=config.address, num_cpus=None if config.address else os.cpu_count(),
                     include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise TrajdiffError(f"cannot reach a Ray cluster at {config.address} ({error})") from None
    gpu_share = 0.25 if config.device.startswith("cuda") else 0.0
    task = ray.remote(num_cpus=1, num_gpus=gpu_share)(_run_batch_logged)
    try:
        pending = [task.remote(batch, budget, config, 1) for batch in batches]
        with progress_bar(total=len(pending), desc="bench (ray)", unit="batch") as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    ray.get(done[0])
                except ray.exceptions.RayTaskError as error:
                    if isinstance(error.cause, TrajdiffError):
                        raise TrajdiffError(str(error.cause)) from None
                    raise
                bar.update(1)
    finally:
        if started_here:
            ray.shutdown()


def _run_batch_logged(batch: list[Job], budget: Budget, config: BenchConfig, threads: int) -> None:
    torch.set_num_threads(threads)
    log_dir = batch[0].run_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        with (log_dir / "bench.log").open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            run_batch(batch, budget, config)
    except Terminated:  # the parent is gone (end_with_parent): the run has cleaned up; the pool must not wait on
        os._exit(128 + signal.SIGTERM)  # a queue whose other end died with it


LAST_EVALUATIONS = 5
"""Evaluations the 'last' figure averages: the end of a run, less at the mercy of one evaluation."""


def run_summary(job: Job, at_step: int | None = None) -> dict[str, Any]:
    """One results.csv row: the final evaluation, the mean of the last five, and the best (online selection);
    with ``at_step``, of the evaluations up to that update, as if the run had ended there."""
    with (job.run_dir / "progress.csv").open() as handle:
        progress = list(csv.DictReader(handle))
    if at_step is not None:
        reached = int(progress[-1]["step"]) if progress else 0
        progress = [row for row in progress if int(row["step"]) <= at_step]
        if not progress or int(progress[-1]["step"]) != at_step:
            raise TrajdiffError(f"{job.run_dir} has no evaluation at update {at_step:,} (its last is at {reached:,}): "
                                "report every run as of an update all have reached with --at-step N, or finish them")
    scores = [float(row["normalized_score"]) for row in progress]
    final = progress[-1]
    return {"method": job.method, "dataset": Path(job.dataset).stem, "seed": job.seed, "updates": int(final["step"]),
            "normalized_score": scores[-1], "last5_normalized_score": float(np.mean(scores[-LAST_EVALUATIONS:])),
            "best_normalized_score": max(scores), "return_mean": float(final["return_mean"]),
            **stability(progress), **last_measures(progress),
            "wall_s": round(float(final["wall_s"]), 1) if final.get("wall_s") else "", "run_dir": str(job.run_dir)}


def stability(progress: list[dict[str, str]]) -> dict[str, float]:
    """How steady a run's score is at its end: the std of its last five evaluations, the largest fall from its
    best so far to a later evaluation, and the change over its last five evaluations (least-squares slope
    times their span: near 0 where the curve has flattened)."""
    steps = np.array([float(row["step"]) for row in progress])
    scores = np.array([float(row["normalized_score"]) for row in progress])
    last_steps, last_scores = steps[-LAST_EVALUATIONS:], scores[-LAST_EVALUATIONS:]
    trend = 0.0
    if len(last_scores) > 1:
        trend = float(np.polyfit(last_steps, last_scores, 1)[0] * (last_steps[-1] - last_steps[0]))
    fall = float((np.maximum.accumulate(scores) - scores).max())
    return {"last5_spread": float(last_scores.std()), "largest_fall": fall, "last5_change": trend}


def last_measures(progress: list[dict[str, str]]) -> dict[str, float | str]:
    """The evaluation measures (trajdiff.measures) averaged over the last five evaluations; '' for progress files
    written before they were recorded."""
    last = progress[-LAST_EVALUATIONS:]
    return {name: float(np.mean([float(row[column]) for row in last]))
            if all(row.get(column) not in (None, "") for row in last) else ""
            for name, column in PROGRESS_COLUMNS.items() if name != "q_states"}
