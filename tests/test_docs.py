"""The documentation: the site builds with no warning, every command it shows parses, the README's example runs,
and every committed report is what the command written beside it computes from the committed runs."""

import csv
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tyro

from trajdiff.cli import _commands, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.DOTALL)
SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_]+\}?")


def documented_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``trajdiff ...`` line of the shell code blocks, continuations joined and
    comments dropped; a shell variable ($S, ${kind}) stands for a value and is read as 1."""
    found = []
    for page in PAGES:
        for block in CODE_BLOCK.findall(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(SHELL_VARIABLE.sub("1", line), comments=True)
                while words and "=" in words[0] and not words[0].startswith("-"):  # MUJOCO_GL=egl trajdiff ...
                    words = words[1:]
                if words[:1] == ["trajdiff"]:
                    found.append((page.name, shlex.join(words)))
    return found


def test_the_pages_show_commands():
    pages = {page for page, _ in documented_commands()}
    assert {"README.md", "training.md", "bench.md", "results.md", "data.md"} <= pages


@pytest.mark.parametrize("page, command", documented_commands())
def test_every_documented_command_parses(page, command):
    """Argument parsing only: the config is built (and validated) from the words, nothing runs."""
    words = shlex.split(command)[1:]
    commands = _commands()
    for names, (config_class, _, _, _) in sorted(commands.items(), key=lambda item: -len(item[0])):
        if tuple(words[: len(names)]) == names:
            try:
                tyro.cli(config_class, args=words[len(names):], config=(tyro.conf.OmitArgPrefixes,))
            except SystemExit as error:
                pytest.fail(f"{page}: `{command}` does not parse (exit {error.code})")
            return
    pytest.fail(f"{page}: `{command}` names no trajdiff command")


@pytest.mark.slow
def test_the_site_builds_without_a_warning(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                               cwd=ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "training" / "index.html").is_file()
    options = (tmp_path / "training" / "index.html").read_text()
    assert "--history-len" in options and "--accept-changed-dataset" in options  # generated from the dataclasses


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("[start:api]")[1].split("[end:api]")[0]
    code = section.split("```python\n")[1].split("```")[0]
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "normalised score" in completed.stdout
    assert (tmp_path / "runs" / "api-example" / "checkpoint.pt").is_file()


RESULT_PAGES = ("results.md", "early-indications.md", "multi-step.md")


def report_commands() -> list[str]:
    """The result pages' ``bench --report-only`` and ``bench --combine`` commands whose output folder is
    committed."""
    commands = [command for page, command in documented_commands() if page in RESULT_PAGES
                and ("--report-only" in command or "--combine" in command)]
    return [command for command in commands if (ROOT / report_folders(command)[-1]).is_dir()]


def report_folders(command: str) -> list[str]:
    """The folders a report command reads, its output folder last."""
    words = shlex.split(command)
    out = words[words.index("--out") + 1]
    combined = words[words.index("--combine") + 1: words.index("--out")] if "--combine" in words else []
    return [*combined, out]


def same_csv(left: Path, right: Path) -> bool:
    """Equal cells, numbers to 1e-9 relative (the last bit of a float sum may depend on the CPU's vector unit)."""
    def cells(path: Path) -> list[list[str]]:
        return list(csv.reader(path.read_text().splitlines()))

    def same(a: str, b: str) -> bool:
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return a == b

    rows_left, rows_right = cells(left), cells(right)
    return len(rows_left) == len(rows_right) and all(
        len(a) == len(b) and all(map(same, a, b)) for a, b in zip(rows_left, rows_right))


@pytest.mark.slow
@pytest.mark.parametrize("command", report_commands(), ids=lambda command: Path(report_folders(command)[-1]).name)
def test_every_committed_report_is_what_its_command_computes(tmp_path, monkeypatch, command):
    """Run the documented command on a copy of what it reads, the output folder's own reports left out: it must
    write the committed tables. (--combine reads its input folders' results.csv, checked by their own case.)"""
    *inputs, out = report_folders(command)
    for folder in inputs:
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copytree(ROOT / out, tmp_path / out, ignore=shutil.ignore_patterns("results.md", "results.csv", "*.png"))
    monkeypatch.chdir(tmp_path)
    main(shlex.split(command)[1:])
    assert (tmp_path / out / "results.md").read_text() == (ROOT / out / "results.md").read_text()
    assert same_csv(tmp_path / out / "results.csv", ROOT / out / "results.csv")


def results_summary():  # noqa: ANN201
    """docs/results_summary.py as a module."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import results_summary
    finally:
        sys.path.pop(0)
    return results_summary


def test_the_results_tables_are_what_the_committed_runs_give():
    """README.md and docs/results.md show the tables docs/results_summary.py generates; the results page opens
    with the summary."""
    summary = results_summary()
    committed = summary.Committed()
    for page, (results_page, names) in summary.PAGES.items():
        text = page.read_text()
        assert summary.generated(text, results_page, names, committed) == text, (
            f"{page.name}: run docs/results_summary.py")
    results = (ROOT / "docs" / "results.md").read_text()
    assert results.index("<!-- summary:begin -->") < results.index("|"), "the summary is the results page's first table"


def write_results(folder: Path, runs: dict[str, list[float]], updates: int = 50_000) -> None:
    """A bench folder's results.csv: for each method, one run per last-5 score (its final score 1 above)."""
    folder.mkdir(parents=True)
    with (folder / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["method", "updates", "normalized_score", "last5_normalized_score"])
        writer.writeheader()
        for method, scores in runs.items():
            writer.writerows({"method": method, "updates": updates, "normalized_score": score + 1,
                              "last5_normalized_score": score} for score in scores)


def test_the_grid_tables_read_their_rule(tmp_path):
    """Known answers: trajdiff's 5 runs all above Diffusion-QL's win (P 1.00 [1.00, 1.00]), all below lose, runs
    that interleave tie; a dataset short of 50,000 updates or without one of the two methods is left out; a
    component with its runs all below the full configuration's helps, one short of 50,000 updates is left out."""
    summary = results_summary()
    ours, base = summary.RECOMMENDED, summary.BASELINE
    results = tmp_path / "docs" / "results"
    write_results(results / "grid-hopper-medium", {base: [10, 11, 12, 13, 14], ours: [20, 21, 22, 23, 24],
                                                   "td3+bc": [5, 5, 5, 5, 5]})
    write_results(results / "grid-hopper-medium-replay", {base: [20, 21, 22, 23, 24], ours: [10, 11, 12, 13, 14],
                                                          f"{ours}-no-history": [1, 2, 3, 4, 5]})
    with (results / "grid-hopper-medium-replay" / "results.csv").open("a") as handle:  # a component still running
        handle.writelines(f"{ours}-one-step,45000,1,0\n" for _ in range(5))
    write_results(results / "grid-hopper-medium-expert", {base: [10, 12, 14, 16, 18], ours: [11, 13, 15, 17, 19]})
    write_results(results / "grid-walker2d-medium", {base: [1, 2, 3, 4, 5], ours: [6, 7, 8, 9, 10]}, updates=45_000)
    write_results(results / "grid-walker2d-medium-replay", {base: [1, 2, 3, 4, 5]})
    committed = summary.Committed(tmp_path)
    rows = summary.grid_table("results.md", committed).splitlines()[2:]
    assert [row.split(" | ")[0].split("]")[0] for row in rows] == [
        "| [hopper-medium", "| [hopper-medium-replay", "| [hopper-medium-expert", "| IQM over 3 datasets"]
    assert rows[0].split(" | ")[2:] == ["13.0 ± 1.4", "12.0 ± 1.4", "23.0 ± 1.4", "22.0 ± 1.4", "1.00 [1.00, 1.00]",
                                        "wins", "5.0 ± 0.0", "— |"]
    assert rows[1].split(" | ")[6:8] == ["0.00 [0.00, 0.00]", "loses"]
    assert rows[2].split(" | ")[7] == "ties"
    components = summary.components_table("results.md", committed).splitlines()[2:]
    assert components == ["| [hopper-medium-replay](results.md#hopper-medium-replay) | history | "
                          "12.0 ± 1.4 | 3.0 ± 1.4 | 1.00 [1.00, 1.00] | helps |"]
    empty = summary.Committed(tmp_path / "empty")
    assert summary.grid_table("results.md", empty).startswith("No dataset of the grid")
    assert summary.components_table("results.md", empty).startswith("No component")
    assert summary.grid_measures_table("results.md", empty).startswith("No dataset of the grid")


def test_the_summary_compares_each_method_of_a_setting_with_diffusion_ql(tmp_path):
    """Known answers: the setting's cells on its first row only, each method's last-5 mean ± std and P(> Diffusion-QL);
    the observation mode from the first Diffusion-QL run's config.json."""
    summary = results_summary()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"observe": "positions"}))

    def runs(values: list[float], updates: int = 50_000) -> list[dict]:
        return [{"dataset": "hopper-medium", "run_dir": "run", "updates": str(updates),
                 "last5_normalized_score": str(value)} for value in values]
    rows = summary.summary_rows({summary.BASELINE: runs([1, 2, 3]), "a": runs([4, 5, 6]), "b": runs([0, 0.5])},
                                "results.md#here", tmp_path)
    assert rows == ["| [hopper-medium](results.md#here) | positions | 50,000 | 3 | 2.0 ± 0.8 | a | 5.0 ± 0.8 "
                    "| 1.00 [1.00, 1.00] |",
                    "|  |  |  |  |  | b | 0.2 ± 0.2 | 0.00 [0.00, 0.00] |"]


def test_the_grid_measures_table_averages_each_measure_over_seeds(tmp_path):
    """Known answers: a method's measures as mean ± std over its runs, — for a measure a method lacks (no critic),
    a method short of 50,000 updates left out, then the dataset's report and learning curves."""
    summary = results_summary()
    folder = tmp_path / "docs" / "results" / "grid-hopper-medium"
    folder.mkdir(parents=True)
    measures = [column for column, _, _ in summary.MEASURES]
    with (folder / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["method", "updates", *measures])
        writer.writeheader()
        for method, updates, value, critic in ((summary.BASELINE, 50_000, 1.0, True),
                                               (summary.BASELINE, 50_000, 3.0, True),
                                               (summary.RECOMMENDED, 50_000, 0.5, True),
                                               ("td3+bc", 50_000, 2.0, False), ("iql", 45_000, 2.0, True)):
            row = {column: value if critic or column in measures[:3] else "" for column in measures}
            writer.writerow({"method": method, "updates": updates, **row})
    text = summary.grid_measures_table("results.md", summary.Committed(tmp_path))
    rows = text.splitlines()[2:5]
    assert rows == [f"| hopper-medium | {summary.BASELINE} | 2 | 2.0 ± 1.0 | 2.0 ± 1.0 | 2.0 ± 1.0 | 2.0 ± 1.0 "
                    "| 2.00 ± 1.00 | 2.000 ± 1.000 |",
                    f"| hopper-medium | {summary.RECOMMENDED} | 1 | 0.5 ± 0.0 | 0.5 ± 0.0 | 0.5 ± 0.0 | 0.5 ± 0.0 "
                    "| 0.50 ± 0.00 | 0.500 ± 0.000 |",
                    "| hopper-medium | td3+bc | 1 | 2.0 ± 0.0 | 2.0 ± 0.0 | 2.0 ± 0.0 | — | — | — |"]
    assert text.endswith("[hopper-medium: the report](results/grid-hopper-medium/results.md)\n\n"
                         "![hopper-medium: learning curves](results/grid-hopper-medium/learning-curves.png)")
    assert "iql" not in text


def test_the_screening_table_applies_its_rule(tmp_path):
    """Known answers for docs/multi-step.md's rule: a candidate more than 5 points below trajdiff-nstep on
    medium-expert does not qualify (exactly 5 below does); the best qualifying candidate on medium-replay is
    picked unless a cheaper one is within 1 point; no pick until every candidate's runs reach 20,000 updates."""
    summary = results_summary()
    replay, expert = summary.SCREENING
    nstep, chunk, lam = summary.SCREENED

    def means(chunk_scores, lambda_scores):
        return {nstep: {replay: 10.0, expert: 50.0}, chunk: dict(zip((replay, expert), chunk_scores)),
                lam: dict(zip((replay, expert), lambda_scores))}
    assert summary.screening_pick(means((30.0, 44.9), (20.5, 46.0))) == lam  # chunk does not qualify
    assert summary.screening_pick(means((30.0, 45.0), (20.5, 46.0))) == chunk
    assert summary.screening_pick(means((10.9, 60.0), (10.5, 46.0))) == nstep  # leads under 1 point
    assert summary.screening_pick(means((11.0, 60.0), (11.5, 60.0))) == chunk

    results = tmp_path / "docs" / "results"
    write_results(results / f"screen-{replay}", {summary.BASELINE: [1, 2, 3], nstep: [9, 10, 11],
                                                 chunk: [29, 30, 31], lam: [20, 21, 22]}, updates=20_000)
    write_results(results / f"screen-{expert}", {nstep: [49, 50, 51], chunk: [40, 40, 40], lam: [45, 46, 47]},
                  updates=20_000)
    table = summary.screening_table("multi-step.md", summary.Committed(tmp_path)).splitlines()
    assert table[2:] == ["| trajdiff-nstep | 3 | 11.0 ± 0.8 | 10.0 ± 0.8 | 51.0 ± 0.8 | 50.0 ± 0.8 | yes |",
                         "| trajdiff-chunk | 3 | 31.0 ± 0.8 | 30.0 ± 0.8 | 41.0 ± 0.0 | 40.0 ± 0.0 | no |",
                         "| trajdiff-lambda | 3 | 22.0 ± 0.8 | 21.0 ± 0.8 | 47.0 ± 0.8 | 46.0 ± 0.8 | yes |",
                         "", "The rule picks **trajdiff-lambda**."]  # Diffusion-QL has no medium-expert runs
    with (results / f"screen-{expert}" / "results.csv").open("a") as handle:  # a candidate's run still going
        handle.write(f"{lam},18000,1,0\n")
    still_going = summary.Committed(tmp_path)
    assert summary.screening_table("multi-step.md", still_going).startswith("The candidates' runs have not")


def test_the_recommended_configuration_is_the_one_the_committed_screening_picks():
    summary = results_summary()
    assert summary.screening_pick(summary.screening_means(summary.Committed().screening)) == summary.RECOMMENDED


def test_a_runs_evaluations_do_not_depend_on_the_runs_beside_it():
    """The committed Diffusion-QL runs on hopper-medium-replay of the multi-step screening
    (seeds 0-2 in one batch, evaluated every 2,000 updates) and of the grid (seeds 0-4, every 5,000) evaluate
    alike at 10,000 updates: the same returns, Q - return and action change to the last digit."""
    def evaluation(folder: str, seed: int) -> dict[str, str]:
        path = ROOT / "docs" / "results" / folder / "runs" / "hopper-medium-replay" / "diffusion-ql" / f"seed{seed}"
        with (path / "progress.csv").open() as handle:
            row = next(row for row in csv.DictReader(handle) if row["step"] == "10000")
        return {key: value for key, value in row.items() if key.startswith(("return_", "normalized", "eval_"))}

    for seed in range(3):
        screened = evaluation("screen-hopper-medium-replay", seed)
        assert screened["normalized_score"] and screened == evaluation("grid-hopper-medium-replay", seed)


def test_generated_tables_in_the_pages_are_current():
    """The option, preset, budget, method and suite tables, and the datasets table, stand in the pages (readable
    as Markdown) as docs/generate_tables.py makes them from the code and the committed dataset records."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from generate_tables import MARKER, filled
    finally:
        sys.path.pop(0)
    pages_with_tables = 0
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        pages_with_tables += bool(MARKER.search(text))
        assert filled(text) == text, f"{page.name}: run python docs/generate_tables.py"
    assert pages_with_tables == 4  # training, bench, export, data
