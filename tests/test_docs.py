"""The documentation: the site builds with no warning, every command it shows parses, the README's example runs,
and every committed report is what the command written beside it computes from the committed runs."""

import csv
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


RESULT_PAGES = ("results.md", "early-indications.md")


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


def test_the_results_summary_is_what_the_committed_runs_give():
    """README.md and docs/results.md open their results with the table docs/results_summary.py generates."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from results_summary import PAGES as SUMMARY_PAGES
        from results_summary import summary_table, with_summary
    finally:
        sys.path.pop(0)
    for page, results_page in SUMMARY_PAGES.items():
        text = page.read_text()
        assert with_summary(text, summary_table(results_page)) == text, f"{page.name}: run docs/results_summary.py"
    results = (ROOT / "docs" / "results.md").read_text()
    assert results.index("<!-- summary:begin -->") < results.index("|"), "the summary is the results page's first table"


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
