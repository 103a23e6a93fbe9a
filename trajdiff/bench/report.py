"""Aggregates (mean, std, IQM with 95% stratified-bootstrap CIs from rliable) and learning curves."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from trajdiff.errors import TrajdiffError


def interquartile_mean(scores: np.ndarray, reps: int = 2000) -> tuple[float, float, float]:
    """IQM over a (runs, tasks) score matrix and its 95% stratified-bootstrap interval (rliable)."""
    try:
        from rliable import library, metrics
    except ImportError:
        raise TrajdiffError("aggregates need rliable: pip install 'trajdiff[bench]'") from None
    point, interval = library.get_interval_estimates(
        {"method": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps)
    return float(point["method"][0]), float(interval["method"][0, 0]), float(interval["method"][1, 0])


def write_report(rows: list[dict], out: Path, title: str) -> None:
    """results.md (per dataset and method: mean, std, IQM [95% CI]) and learning-curves.png."""
    by_method: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_method[row["method"]][row["dataset"]].append(row["normalized_score"])
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    from trajdiff.utils import library_versions

    versions = ", ".join(f"{name} {version}" for name, version in library_versions().items())
    baseline_records = [Path(row["run_dir"]) / "d3rlpy.json" for row in rows]
    baseline_versions = sorted({", ".join(f"{name} {version}" for name, version in
                                          json.loads(path.read_text())["versions"].items())
                                for path in baseline_records if path.is_file()})
    if baseline_versions:
        versions += f"; baselines in their own virtualenv: {'; '.join(baseline_versions)}"
    lines = [f"# Results: {title}", "", "Normalised score of the final policy (D4RL reference returns).",
             f"Libraries: {versions}.", "",
             "| method | dataset | seeds | mean | std | IQM [95% CI] |", "|---|---|---|---|---|---|"]
    for method, per_dataset in by_method.items():
        for dataset in datasets:
            scores = np.array(per_dataset[dataset])
            low_high = interquartile_mean(scores[:, None])
            lines.append(f"| {method} | {dataset} | {len(scores)} | {scores.mean():.1f} | {scores.std():.1f} | "
                         f"{low_high[0]:.1f} [{low_high[1]:.1f}, {low_high[2]:.1f}] |")
    if len(datasets) > 1:
        lines += ["", "| method | IQM over datasets and seeds [95% CI] |", "|---|---|"]
        for method, per_dataset in by_method.items():
            matrix = np.array([per_dataset[dataset] for dataset in datasets]).T  # (seeds, datasets)
            iqm, low, high = interquartile_mean(matrix)
            lines.append(f"| {method} | {iqm:.1f} [{low:.1f}, {high:.1f}] |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot_learning_curves(rows, datasets, out / "learning-curves.png")


def plot_learning_curves(rows: list[dict], datasets: list[str], path: Path) -> None:
    """Normalised score against updates: one panel per dataset, mean over seeds per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.5), squeeze=False)
    curves: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for row in rows:
        with (Path(row["run_dir"]) / "progress.csv").open() as handle:
            progress = list(csv.DictReader(handle))
        steps = np.array([int(entry["step"]) for entry in progress])
        scores = np.array([float(entry["normalized_score"]) for entry in progress])
        curves[(row["dataset"], row["method"])].append((steps, scores))
    for axis, dataset in zip(axes[0], datasets):
        for (curve_dataset, method), runs in curves.items():
            if curve_dataset != dataset:
                continue
            length = min(len(steps) for steps, _ in runs)
            mean = np.mean([scores[:length] for _, scores in runs], axis=0)
            axis.plot(runs[0][0][:length], mean, marker="o", label=method)
        axis.set_title(dataset)
        axis.set_xlabel("updates")
        axis.set_ylabel("normalised score")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
