"""The results tables generated from the committed bench folders' results.csv (and their runs' config.json):
the summary of the 50,000-update settings (one row per method compared with Diffusion-QL), the locomotion
grid with its components and measures (docs/results.md, "The locomotion grid"), and the multi-step screening
(docs/multi-step.md), each read by the rule fixed on its page before the runs.

    python docs/results_summary.py          # rewrite the tables in the pages (PAGES)
    python docs/results_summary.py --check  # exit 1 if a page's table differs from the files

Each table sits between its ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` lines (NAME: summary, settings
(the summary less the grid's rows), grid, components, grid-measures, screening); the test suite regenerates them
and compares.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from functools import cached_property, partial
from pathlib import Path

import numpy as np

from trajdiff.bench.methods import RECOMMENDED
from trajdiff.bench.report import interquartile_mean, probability_of_improvement, score_matrix

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = (
    ("evidence-hopper-medium-expert-positions", "hopper-medium-expert-positions-only"),
    ("evidence-hopper-medium-velocities", "hopper-medium-velocities-only"),
    ("evidence-halfcheetah-medium-positions", "halfcheetah-medium-positions-only"),
    ("evidence-hopper-medium-expert-full", "hopper-medium-expert-full-observations"),
    ("evidence-walker2d-medium-expert-full", "walker2d-medium-expert-full-observations"),
)
"""(folder under docs/results, the anchor of its section in results.md), in the page's order."""
BASELINE = "diffusion-ql"
GRID = tuple(f"{body}-{kind}" for body in ("hopper", "walker2d")
             for kind in ("medium", "medium-replay", "medium-expert"))
"""The grid's datasets in its table's order; docs/results/grid-DATASET is each one's bench folder, in the table
once its results.csv holds both methods' runs at GRID_UPDATES, linked to its section in results.md ("### DATASET")."""
GRID_UPDATES = 50_000
NO_GRID_DATASET = f"No dataset of the grid has both methods' runs at {GRID_UPDATES:,} updates yet."
GRID_BASELINES = ("td3+bc", "iql")
COMPONENTS = (("no-history", "history"), ("one-step", "multi-step critic"), ("no-expertise", "expertise weighting"))
"""(the suffix of the method without the part, the part), as trajdiff.bench.methods.without_each_part names
them; the grid compares its method, RECOMMENDED, with Diffusion-QL."""
SCREENING = ("hopper-medium-replay", "hopper-medium-expert")
"""The multi-step screening's datasets; docs/results/screen-DATASET is each one's bench folder."""
SCREENED = ("trajdiff-nstep", "trajdiff-chunk", "trajdiff-lambda")
"""The screening's candidates, cheapest first (the order that breaks a lead under SCREENING_TIE points)."""
SCREENING_UPDATES = 20_000
SCREENING_MARGIN = 5.0
SCREENING_TIE = 1.0
PAGES = {ROOT / "README.md": ("docs/results.md", ("grid", "components", "settings")),
         ROOT / "docs" / "results.md": ("results.md", ("summary", "grid", "components", "grid-measures")),
         ROOT / "docs" / "multi-step.md": ("multi-step.md", ("screening",))}
"""Each page that shows generated tables: how it links to the results page, and which tables it shows."""


def read_rows(folder: Path) -> dict[str, list[dict]]:
    """A bench folder's results.csv rows by method."""
    with (folder / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_method: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_method[row["method"]].append(row)
    return by_method


def scores(runs: list[dict], column: str = "last5_normalized_score") -> np.ndarray:
    return np.array([float(row[column]) for row in runs])


def mean_std(values: np.ndarray, digits: int = 1) -> str:
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def interval(point: float, low: float, high: float) -> str:
    return f"{point:.2f} [{low:.2f}, {high:.2f}]"


def reading(low: float, high: float, words: tuple[str, str, str]) -> str:
    """The rule of docs/results.md: the first word when the interval of P(X > Y) lies above 0.5, the second when
    it lies below, the third otherwise."""
    return words[0] if low > 0.5 else words[1] if high < 0.5 else words[2]


class Committed:
    """The committed bench folders under ``root`` that the tables read, each results.csv read once."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root

    @cached_property
    def settings(self) -> dict[str, dict[str, list[dict]]]:
        """results.csv rows by method for each folder of SETTINGS."""
        return {folder_name: read_rows(self.root / "docs" / "results" / folder_name) for folder_name, _ in SETTINGS}

    @cached_property
    def grid(self) -> dict[str, dict[str, list[dict]]]:
        return grid_folders(self.root)

    @cached_property
    def screening(self) -> dict[str, dict[str, list[dict]]]:
        return screening_runs(self.root)


def summary_table(results_page: str, committed: Committed, with_grid: bool = True) -> str:
    """The summary as Markdown, its links pointing into ``results_page``: a row per method compared with
    Diffusion-QL in each setting of SETTINGS, then (``with_grid``) RECOMMENDED on each dataset the grid table
    shows."""
    lines = ["| setting | observed | updates | seeds | Diffusion-QL, last 5 | compared with | its last 5 "
             "| P(> Diffusion-QL), last 5 [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    for folder_name, anchor in SETTINGS:
        lines += summary_rows(committed.settings[folder_name], f"{results_page}#{anchor}", committed.root)
    for dataset, by_method in committed.grid.items() if with_grid else ():
        compared = {method: by_method[method] for method in (BASELINE, RECOMMENDED)}
        lines += summary_rows(compared, f"{results_page}#{dataset}", committed.root)
    return "\n".join(lines)


def summary_rows(by_method: dict[str, list[dict]], link: str, root: Path) -> list[str]:
    """One setting's rows of the summary: each method against Diffusion-QL; the setting's cells on the first."""
    record = json.loads((root / by_method[BASELINE][0]["run_dir"] / "config.json").read_text())
    baseline = scores(by_method[BASELINE])
    updates = {int(float(row["updates"])) for runs in by_method.values() for row in runs}
    setting = [f"[{by_method[BASELINE][0]['dataset']}]({link})", record["observe"],
               ", ".join(f"{count:,}" for count in sorted(updates))]
    lines = []
    for method, runs in by_method.items():
        if method == BASELINE:
            continue
        point, low, high = probability_of_improvement(scores(runs)[:, None], baseline[:, None])
        cells = [*setting, str(min(len(runs), len(baseline))), mean_std(baseline)] if not lines else [""] * 5
        cells += [method, mean_std(scores(runs)), interval(point, low, high)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def grid_folders(root: Path) -> dict[str, dict[str, list[dict]]]:
    """The grid's finished datasets: results.csv rows by method, for each dataset whose folder holds both
    methods' runs, every one at GRID_UPDATES."""
    found = {}
    for dataset in GRID:
        folder = root / "docs" / "results" / f"grid-{dataset}"
        if not (folder / "results.csv").is_file():
            continue
        by_method = read_rows(folder)
        if by_method.get(BASELINE) and by_method.get(RECOMMENDED) and all_at(
                by_method[BASELINE] + by_method[RECOMMENDED]):
            found[dataset] = by_method
    return found


def all_at(runs: list[dict], updates: int = GRID_UPDATES) -> bool:
    """Whether every run of ``runs`` ended at ``updates``."""
    return all(int(float(row["updates"])) == updates for row in runs)


def grid_table(results_page: str, committed: Committed) -> str:
    """The grid as Markdown: per dataset, Diffusion-QL and RECOMMENDED (final and last 5, mean ± std over seeds),
    P(RECOMMENDED > Diffusion-QL) over the last five with its reading, the baselines' last 5; then the IQM over
    the datasets present."""
    baselines = " | ".join(f"{name}, last 5" for name in GRID_BASELINES)
    lines = [f"| dataset | seeds | Diffusion-QL, final | last 5 | {RECOMMENDED}, final | last 5 "
             f"| P(> Diffusion-QL), last 5 [95% CI] | reading | {baselines} |",
             "|---|" + "---|" * (7 + len(GRID_BASELINES))]
    found = committed.grid
    for dataset, by_method in found.items():
        ours, theirs = by_method[RECOMMENDED], by_method[BASELINE]
        point, low, high = probability_of_improvement(scores(ours)[:, None], scores(theirs)[:, None])
        cells = [f"[{dataset}]({results_page}#{dataset})",
                 str(min(len(ours), len(theirs)))]
        for runs in (theirs, ours):
            cells += [mean_std(scores(runs, "normalized_score")), mean_std(scores(runs))]
        cells += [interval(point, low, high), reading(low, high, ("wins", "loses", "ties"))]
        cells += [mean_std(scores(by_method[name])) if by_method.get(name) else "—" for name in GRID_BASELINES]
        lines.append("| " + " | ".join(cells) + " |")
    if not found:
        return NO_GRID_DATASET
    if len(found) > 1:
        lines.append(iqm_row(found))
    return "\n".join(lines)


def iqm_row(found: dict[str, dict[str, list[dict]]]) -> str:
    """The grid table's last row: each method's IQM over its runs on the datasets present (final, last 5) and
    P(RECOMMENDED > Diffusion-QL) over them, stratified by dataset (rliable), with 95% intervals."""
    def matrix(method: str, column: str) -> np.ndarray:  # results.csv cells are text
        per_dataset = {dataset: by_method[method] for dataset, by_method in found.items()}
        return score_matrix(per_dataset, list(found), column).astype(float)

    cells = [f"IQM over {len(found)} datasets", ""]
    for method in (BASELINE, RECOMMENDED):
        for column in ("normalized_score", "last5_normalized_score"):
            iqm, low, high = interquartile_mean(matrix(method, column))
            cells.append(f"{iqm:.1f} [{low:.1f}, {high:.1f}]")
    point, low, high = probability_of_improvement(matrix(RECOMMENDED, "last5_normalized_score"),
                                                  matrix(BASELINE, "last5_normalized_score"))
    cells.append(interval(point, low, high))  # the reading rule is per dataset
    return "| " + " | ".join(cells + [""] * (1 + len(GRID_BASELINES))) + " |"


def components_table(results_page: str, committed: Committed) -> str:
    """The components as Markdown: per grid dataset and part, RECOMMENDED against it without the part (last 5,
    mean ± std over seeds) and P(RECOMMENDED > without the part) with its reading."""
    header = [f"| dataset | part removed | {RECOMMENDED}, last 5 | without the part, last 5 "
              "| P(with > without), last 5 [95% CI] | the part |", "|---|---|---|---|---|---|"]
    lines = []
    for dataset, by_method in committed.grid.items():
        for suffix, part in COMPONENTS:
            without = by_method.get(f"{RECOMMENDED}-{suffix}", [])
            if not without or not all_at(without):
                continue
            point, low, high = probability_of_improvement(scores(by_method[RECOMMENDED])[:, None],
                                                          scores(without)[:, None])
            effect = reading(low, high, ("helps", "hurts", "no effect measured"))
            lines.append(f"| [{dataset}]({results_page}#{dataset}) | {part} | "
                         f"{mean_std(scores(by_method[RECOMMENDED]))} | {mean_std(scores(without))} | "
                         f"{interval(point, low, high)} | {effect} |")
    if not lines:
        return f"No component's runs at {GRID_UPDATES:,} updates yet."
    return "\n".join(header + lines)


MEASURES = (("best_normalized_score", "best (online)", 1), ("last5_spread", "spread, last 5", 1),
            ("largest_fall", "largest fall", 1), ("q_bias", "Q − return", 1), ("q_correlation", "corr(Q, return)", 2),
            ("action_change", "action change", 3))
"""(results.csv column, heading, decimals) of the grid's measures table; docs/training.md ("Evaluation measures")
defines each."""


def grid_measures_table(results_page: str, committed: Committed) -> str:
    """Per grid dataset and each method whose runs all reached GRID_UPDATES: the measures of MEASURES (mean ± std
    over seeds; — for a method without a critic), then a link to the dataset's report and its learning curves."""
    lines = ["| dataset | method | seeds | " + " | ".join(heading for _, heading, _ in MEASURES) + " |",
             "|---|---|---|" + "---|" * len(MEASURES)]
    figures = []
    for dataset, by_method in committed.grid.items():
        for method, runs in by_method.items():
            if not all_at(runs):
                continue
            cells = [dataset, method, str(len(runs))]
            for column, _, digits in MEASURES:
                present = all(row[column] not in ("", "nan") for row in runs)
                cells.append(mean_std(scores(runs, column), digits) if present else "—")
            lines.append("| " + " | ".join(cells) + " |")
        folder = str(Path(results_page).parent / "results" / f"grid-{dataset}").removeprefix("./")
        figures.append(f"[{dataset}: the report]({folder}/results.md)\n\n"
                       f"![{dataset}: learning curves]({folder}/learning-curves.png)")
    if not figures:
        return NO_GRID_DATASET
    return "\n".join(lines) + "\n\n" + "\n\n".join(figures)


def screening_runs(root: Path) -> dict[str, dict[str, list[dict]]]:
    """results.csv rows by method for each screening dataset (none where its folder has no results.csv)."""
    folders = {dataset: root / "docs" / "results" / f"screen-{dataset}" for dataset in SCREENING}
    return {dataset: read_rows(folder) if (folder / "results.csv").is_file() else {}
            for dataset, folder in folders.items()}


def screening_means(runs: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, float]] | None:
    """M per screened method and dataset: the mean over seeds of each run's last-5 score; None until every
    candidate's runs on both datasets reach SCREENING_UPDATES."""
    means: dict[str, dict[str, float]] = defaultdict(dict)
    for dataset, by_method in runs.items():
        for method in SCREENED:
            method_runs = by_method.get(method, [])
            if not method_runs or not all_at(method_runs, SCREENING_UPDATES):
                return None
            means[method][dataset] = float(scores(method_runs).mean())
    return dict(means)


def qualifies(means: dict[str, dict[str, float]], method: str) -> bool:
    """The rule of docs/multi-step.md, first half: M on medium-expert at least trajdiff-nstep's minus
    SCREENING_MARGIN."""
    expert = SCREENING[1]
    return means[method][expert] >= means[SCREENED[0]][expert] - SCREENING_MARGIN


def screening_pick(means: dict[str, dict[str, float]]) -> str:
    """The rule of docs/multi-step.md: of the qualifying candidates, the cheapest whose M on medium-replay is
    within SCREENING_TIE of the highest."""
    replay = SCREENING[0]
    qualified = [method for method in SCREENED if qualifies(means, method)]
    best = max(means[method][replay] for method in qualified)
    return next(method for method in qualified if means[method][replay] > best - SCREENING_TIE)


def screening_table(results_page: str, committed: Committed) -> str:
    """The screening as Markdown: per method, final and last 5 (mean ± std over seeds) on each dataset, whether
    it qualifies, then the rule's pick; Diffusion-QL's row for comparison once its runs reach SCREENING_UPDATES.
    (``results_page``: the tables' common signature; this one links nowhere.)"""
    folders = committed.screening
    means = screening_means(folders)
    if means is None:
        return f"The candidates' runs have not all reached {SCREENING_UPDATES:,} updates yet."
    head = " | ".join(f"{dataset}, final | last 5" for dataset in SCREENING)
    lines = [f"| method | seeds | {head} | qualifies |", "|---|---|" + "---|" * (2 * len(SCREENING) + 1)]
    for method in (BASELINE, *SCREENED):
        runs = [folders[dataset].get(method, []) for dataset in SCREENING]
        if not all(runs) or not all(all_at(dataset_runs, SCREENING_UPDATES) for dataset_runs in runs):
            continue
        cells = [method, str(min(map(len, runs)))]
        for dataset_runs in runs:
            cells += [mean_std(scores(dataset_runs, "normalized_score")), mean_std(scores(dataset_runs))]
        cells.append("" if method == BASELINE else "yes" if qualifies(means, method) else "no")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"The rule picks **{screening_pick(means)}**."]
    return "\n".join(lines)


TABLES = {"summary": summary_table, "settings": partial(summary_table, with_grid=False), "grid": grid_table,
          "components": components_table, "grid-measures": grid_measures_table, "screening": screening_table}
"""Each generated table by its markers' name."""


def with_table(text: str, name: str, table: str) -> str:
    """``text`` with the lines between the ``name`` table's markers replaced by ``table``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    head, found, rest = text.partition(begin + "\n")
    if not found or end not in rest:
        raise ValueError(f"no {begin} ... {end} block")
    return head + begin + "\n" + table + "\n" + rest[rest.index(end):]


def generated(text: str, results_page: str, names: tuple[str, ...], committed: Committed) -> str:
    """A page's text with its tables (``names``) regenerated from the ``committed`` files."""
    for name in names:
        text = with_table(text, name, TABLES[name](results_page, committed))
    return text


def main(argv: list[str]) -> int:
    stale, committed = [], Committed()
    for page, (results_page, names) in PAGES.items():
        text = page.read_text()
        updated = generated(text, results_page, names, committed)
        if updated != text:
            stale.append(page.relative_to(ROOT))
            if "--check" not in argv:
                page.write_text(updated)
    if stale:
        print(f"{'stale' if '--check' in argv else 'rewrote'}: {', '.join(map(str, stale))}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
