"""The results summary: one row per method compared with Diffusion-QL in each 50,000-update setting, from the
committed bench folders' results.csv and their runs' config.json.

    python docs/results_summary.py          # rewrite the summary in README.md and docs/results.md
    python docs/results_summary.py --check  # exit 1 if either page's summary differs from the files

The table sits between the ``<!-- summary:begin -->`` and ``<!-- summary:end -->`` lines of each page; the test
suite regenerates it and compares.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from trajdiff.bench.report import probability_of_improvement

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
BEGIN, END = "<!-- summary:begin -->", "<!-- summary:end -->"
PAGES = {ROOT / "README.md": "docs/results.md", ROOT / "docs" / "results.md": "results.md"}
"""Each page that shows the summary, and how it links to the results page."""


def setting_rows(folder: Path) -> tuple[dict[str, list[dict]], dict]:
    """The folder's results.csv rows by method, and the config.json of its first run."""
    with (folder / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_method: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_method[row["method"]].append(row)
    first_run = ROOT / rows[0]["run_dir"] / "config.json"
    return by_method, json.loads(first_run.read_text())


def summary_table(results_page: str) -> str:
    """The summary as Markdown, its links pointing into ``results_page``."""
    lines = ["| setting | observed | updates | seeds | Diffusion-QL, last 5 | compared with | its last 5 "
             "| P(> Diffusion-QL), last 5 [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    for folder_name, anchor in SETTINGS:
        by_method, record = setting_rows(ROOT / "docs" / "results" / folder_name)
        baseline = np.array([float(row["last5_normalized_score"]) for row in by_method[BASELINE]])
        updates = {int(float(row["updates"])) for runs in by_method.values() for row in runs}
        dataset = by_method[BASELINE][0]["dataset"]
        first = True
        for method, runs in by_method.items():
            if method == BASELINE:
                continue
            scores = np.array([float(row["last5_normalized_score"]) for row in runs])
            point, low, high = probability_of_improvement(scores[:, None], baseline[:, None])
            cells = ([f"[{dataset}]({results_page}#{anchor})", record["observe"],
                      ", ".join(f"{count:,}" for count in sorted(updates)), str(min(len(runs), len(baseline))),
                      f"{baseline.mean():.1f} ± {baseline.std():.1f}"] if first else [""] * 5)
            cells += [method, f"{scores.mean():.1f} ± {scores.std():.1f}", f"{point:.2f} [{low:.2f}, {high:.2f}]"]
            lines.append("| " + " | ".join(cells) + " |")
            first = False
    return "\n".join(lines)


def with_summary(text: str, table: str) -> str:
    """``text`` with the lines between the summary markers replaced by ``table``."""
    head, found, rest = text.partition(BEGIN + "\n")
    if not found or END not in rest:
        raise ValueError(f"no {BEGIN} ... {END} block")
    return head + BEGIN + "\n" + table + "\n" + rest[rest.index(END):]


def main(argv: list[str]) -> int:
    stale = []
    for page, results_page in PAGES.items():
        text = page.read_text()
        updated = with_summary(text, summary_table(results_page))
        if updated != text:
            stale.append(page.relative_to(ROOT))
            if "--check" not in argv:
                page.write_text(updated)
    if stale:
        print(f"{'stale' if '--check' in argv else 'rewrote'}: {', '.join(map(str, stale))}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
