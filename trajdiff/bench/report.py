"""Aggregates (mean, std, IQM with 95% stratified-bootstrap CIs from rliable) and learning curves."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from trajdiff.errors import TrajdiffError
from trajdiff.plots import pyplot


def interquartile_mean(scores: np.ndarray, reps: int = 2000) -> tuple[float, float, float]:
    """IQM over a (runs, tasks) score matrix and its 95% stratified-bootstrap interval (rliable)."""
    return interval_estimate("aggregate_iqm", scores, reps)


@contextmanager
def seeded_bootstrap() -> Iterator[None]:
    """Seed numpy's global generator for the duration, then restore it. rliable 1.2 draws its bootstrap indices
    from it (np.random.choice) and never from its random_state argument; seeded, the same files give the same
    intervals and figures, byte for byte."""
    global_state = np.random.get_state()
    np.random.seed(0)
    try:
        yield
    finally:
        np.random.set_state(global_state)


def interval_estimate(metric: str, scores: np.ndarray | list[np.ndarray], reps: int) -> tuple[float, float, float]:
    """An rliable metric (by name) of a (runs, tasks) score matrix, or of a list of them compared, with its 95%
    stratified-bootstrap interval: (point, low, high)."""
    try:
        from rliable import library, metrics
    except ImportError:
        raise TrajdiffError("aggregates need rliable: pip install 'trajdiff[bench]'") from None
    statistic = getattr(metrics, metric)
    with seeded_bootstrap():
        point, interval = library.get_interval_estimates(
            {"estimate": scores}, lambda *matrices: np.array([statistic(*matrices)]), reps=reps)
    return float(point["estimate"][0]), float(interval["estimate"][0, 0]), float(interval["estimate"][1, 0])


FIGURES = (("normalized_score", "final"), ("last5_normalized_score", "last 5 evaluations"),
           ("best_normalized_score", "best evaluation (online selection)"))
"""results.csv columns the report aggregates, and how it names them."""


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int = 2000) -> tuple[float, float, float]:
    """P(X > Y) over (runs, tasks) score matrices of two methods, with a 95% stratified-bootstrap interval."""
    return interval_estimate("probability_of_improvement", [x, y], reps)


def write_report(rows: list[dict], out: Path, title: str) -> None:
    """results.md, learning-curves.png and (several datasets) performance-profiles.png from results.csv rows.

    Per dataset and method: mean and std over seeds of the final score, the mean of the last five
    evaluations and the best evaluation (online selection), and the IQM of the final score with its 95%
    stratified-bootstrap interval. Across datasets: the IQM of the final and last-five scores; and the
    probability that each method improves on Diffusion-QL.
    """
    by_method: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_method[row["method"]][row["dataset"]].append(row)
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    versions = "; ".join(run_versions(rows))
    seeds = min(len(runs) for per_dataset in by_method.values() for runs in per_dataset.values())
    lines = [f"# Results: {title}", "", "Normalised score (D4RL reference returns): final evaluation, mean of the "
             "last five evaluations, and best evaluation (online selection: it peeks at the test returns); "
             "mean ± std over seeds.", f"Libraries (the runs' own records): {versions}."]
    if seeds <= 3:
        lines.append(f"With {seeds} run(s) per cell the IQM is the mean and its interval spans about the "
                     "range of the runs: read them as such.")
    lines += score_table(by_method, datasets)
    complete = [method for method, per_dataset in by_method.items() if all(per_dataset.get(d) for d in datasets)]
    lines += beyond_the_score(by_method, datasets)
    if len(datasets) > 1:
        lines += ["", "| method | IQM of final over datasets and seeds [95% CI] | IQM of last 5 [95% CI] |",
                  "|---|---|---|"]
        for method in complete:  # a method run on only some of the datasets has no aggregate over them
            cells = []
            for column in ("normalized_score", "last5_normalized_score"):
                iqm, low, high = interquartile_mean(score_matrix(by_method[method], datasets, column))
                cells.append(f"{iqm:.1f} [{low:.1f}, {high:.1f}]")
            lines.append(f"| {method} | {' | '.join(cells)} |")
        plot_performance_profiles({method: score_matrix(by_method[method], datasets, "normalized_score")
                                   for method in complete}, out / "performance-profiles.png")
    if "diffusion-ql" in complete and len(complete) > 1:
        lines += ["", f"| P(method > diffusion-ql) over {len(datasets)} dataset(s) [95% CI] | final | last 5 |",
                  "|---|---|---|"]
        for method in complete:
            if method == "diffusion-ql":
                continue
            cells = []
            for column in ("normalized_score", "last5_normalized_score"):
                point, low, high = probability_of_improvement(
                    score_matrix(by_method[method], datasets, column),
                    score_matrix(by_method["diffusion-ql"], datasets, column))
                cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
            lines.append(f"| P({method} > diffusion-ql) | {' | '.join(cells)} |")
    lines += provenance(rows)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot_learning_curves(rows, datasets, out / "learning-curves.png")


def score_table(by_method: dict[str, dict[str, list[dict]]], datasets: list[str]) -> list[str]:
    """The results table's lines: per method and dataset, mean ± std over seeds of each FIGURES column and the IQM
    of the final score with its interval."""
    lines = ["", "| method | dataset | seeds | final | last 5 | best (online) | IQM of final [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for method, per_dataset in by_method.items():
        for dataset in datasets:
            runs = per_dataset.get(dataset, [])
            if not runs:
                continue
            cells = []
            for column, _ in FIGURES:
                values = np.array([run[column] for run in runs])
                cells.append(f"{values.mean():.1f} ± {values.std():.1f}")
            iqm, low, high = interquartile_mean(np.array([run["normalized_score"] for run in runs])[:, None])
            lines.append(f"| {method} | {dataset} | {len(runs)} | {' | '.join(cells)} | "
                         f"{iqm:.1f} [{low:.1f}, {high:.1f}] |")
    return lines


def run_record(run_dir: Path) -> tuple[dict, bool]:
    """A run's own record (a d3rlpy baseline's d3rlpy.json, else trajdiff's config.json; empty when it has none)
    and whether it is a baseline's."""
    baseline = (run_dir / "d3rlpy.json").is_file()
    path = run_dir / ("d3rlpy.json" if baseline else "config.json")
    return (json.loads(path.read_text()) if path.is_file() else {}), baseline


def run_versions(rows: list[dict]) -> list[str]:
    """The distinct library versions the runs recorded (a baseline's from its own virtualenv), in first-seen
    order: a report says what trained its runs, not what computed it."""
    found = []
    for row in rows:
        record, baseline = run_record(Path(row["run_dir"]))
        listed = ", ".join(f"{name} {version}" for name, version in record.get("versions", {}).items())
        found.append(f"baselines in their own virtualenv: {listed or 'not recorded'}" if baseline
                     else listed or "not recorded")
    return list(dict.fromkeys(found))


STOP_AT = re.compile(r" --stop-at \d+")


def run_parts(run_dir: Path, updates: int) -> list[tuple[int, int, str, str, str, str]]:
    """(first update, last update, code commit, CPU, GPU, command less its --stop-at) of each stretch of a run's
    kept updates, from the starts its record (:func:`run_record`) lists: a start's updates are kept up to the next
    start's checkpoint (none when it resumed from the same one), and consecutive starts alike in all but --stop-at
    make one stretch. Empty when the run records no starts."""
    starts = run_record(run_dir)[0].get("starts", [])
    ends = [start["at_update"] for start in starts[1:]] + [updates]
    parts: list[tuple[int, int, str, str, str, str]] = []
    for start, end in zip(starts, ends):
        if end <= start["at_update"]:
            continue
        key = ((start.get("code_commit") or "unknown")[:7], start.get("cpu", "unknown"), start.get("gpu") or "none",
               STOP_AT.sub("", start.get("command", "unknown")))  # d3rlpy_train.py run by hand: at_update alone
        if parts and parts[-1][2:] == key and parts[-1][1] == start["at_update"]:
            parts[-1] = (parts[-1][0], end, *key)
        else:
            parts.append((start["at_update"], end, *key))
    return parts


UNRECORDED = ("not recorded",) * 4
"""A run's code commit, CPU, GPU and command in the provenance table when its record lists no starts."""


def provenance(rows: list[dict]) -> list[str]:
    """The report's last table, from the runs' own records: per method, the stretches of updates with their code
    commit, CPU, GPU and command (runs alike counted once), a run that records no starts as "not recorded";
    nothing when no run records its starts."""
    counts: dict[tuple, int] = defaultdict(int)
    for row in rows:
        updates = int(float(row["updates"]))
        for part in run_parts(Path(row["run_dir"]), updates) or [(0, updates, *UNRECORDED)]:
            counts[(row["method"], *part)] += 1
    if all(part[3:] == UNRECORDED for part in counts):
        return []
    lines = ["", "Where the runs' updates were made (each run records its starts; the command less its --stop-at):",
             "", "| method | updates | runs | code commit | CPU | GPU | command |",
             "|---|---|---|---|---|---|---|"]
    for (method, first, last, commit, cpu, gpu, command), runs in counts.items():
        shown = command if (commit, cpu, gpu, command) == UNRECORDED else f"`{command}`"
        lines.append(f"| {method} | {first:,}-{last:,} | {runs} | {commit} | {cpu} | {gpu} | {shown} |")
    return lines


BEYOND_THE_SCORE = (("last5_spread", "spread of last 5", 1), ("largest_fall", "largest fall from best", 1),
                    ("last5_change", "change over last 5", 1), ("q_bias", "Q − return", 1),
                    ("q_correlation", "corr(Q, return)", 2), ("action_change", "action change", 4))
"""results.csv columns of the second table (trajdiff.commands.bench.stability and last_measures), their
headings and decimals."""


def beyond_the_score(by_method: dict[str, dict[str, list[dict]]], datasets: list[str]) -> list[str]:
    """The stability of each method's runs and the evaluation measures of its last five evaluations, mean ± std
    over seeds; '—' where a run's progress file does not record a measure."""
    headings = " | ".join(heading for _, heading, _ in BEYOND_THE_SCORE)
    lines = ["", "Stability (normalised score) and, over the last five evaluations, the critic's value of the actions "
             "taken minus the discounted return obtained, their correlation across states, and the mean squared "
             "change of the action between steps (docs: \"Evaluation measures\").", "",
             f"| method | dataset | {headings} |", "|---|---|" + "---|" * len(BEYOND_THE_SCORE)]
    for method, per_dataset in by_method.items():
        for dataset in datasets:
            if not per_dataset.get(dataset):
                continue
            cells = []
            for column, _, decimals in BEYOND_THE_SCORE:
                values = [run[column] for run in per_dataset[dataset]]
                if any(value == "" for value in values):
                    cells.append("—")
                else:
                    cells.append(f"{np.mean(values):.{decimals}f} ± {np.std(values):.{decimals}f}")
            lines.append(f"| {method} | {dataset} | {' | '.join(cells)} |")
    return lines


def score_matrix(per_dataset: dict[str, list[dict]], datasets: list[str], column: str) -> np.ndarray:
    """(runs, datasets) scores of one method, runs cut to the fewest any dataset has."""
    runs = min(len(per_dataset[dataset]) for dataset in datasets)
    return np.array([[run[column] for run in per_dataset[dataset][:runs]] for dataset in datasets]).T


def plot_performance_profiles(scores: dict[str, np.ndarray], path: Path) -> None:
    """rliable's performance profiles: the fraction of runs above each score, with 95% bands."""
    plt = pyplot()
    from rliable import library, plot_utils

    top = max(float(matrix.max()) for matrix in scores.values())
    thresholds = np.linspace(0.0, max(top, 1.0), 81)
    with seeded_bootstrap():
        profiles, intervals = library.create_performance_profile(scores, thresholds, reps=500)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    plot_utils.plot_performance_profiles(profiles, thresholds, performance_profile_cis=intervals, ax=axis,
                                         xlabel="normalised score τ", ylabel="fraction of runs > τ")
    axis.legend(list(scores), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_learning_curves(rows: list[dict], datasets: list[str], path: Path) -> None:
    """Normalised score against updates: one panel per dataset, mean over seeds per method, ± one std as a band."""
    plt = pyplot()

    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.5), squeeze=False)
    curves: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for row in rows:
        with (Path(row["run_dir"]) / "progress.csv").open() as handle:
            progress = list(csv.DictReader(handle))
        progress = [entry for entry in progress if int(entry["step"]) <= int(row["updates"])]  # cut as the row is
        steps = np.array([int(entry["step"]) for entry in progress])
        scores = np.array([float(entry["normalized_score"]) for entry in progress])
        curves[(row["dataset"], row["method"])].append((steps, scores))
    for axis, dataset in zip(axes[0], datasets):
        for (curve_dataset, method), runs in curves.items():
            if curve_dataset != dataset:
                continue
            length = min(len(steps) for steps, _ in runs)
            matrix = np.array([scores[:length] for _, scores in runs])  # (seeds, evaluations)
            steps, mean, spread = runs[0][0][:length], matrix.mean(axis=0), matrix.std(axis=0)
            (line,) = axis.plot(steps, mean, marker="o", markersize=3, label=method)
            axis.fill_between(steps, mean - spread, mean + spread, color=line.get_color(), alpha=0.2)
        axis.set_title(dataset)
        axis.set_xlabel("updates")
        axis.set_ylabel("normalised score")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
