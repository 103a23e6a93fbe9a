"""Tables generated from the code, so that the documentation cannot drift from it.

A page holds each table between a marker line and ``<!-- end table -->``; ``python docs/generate_tables.py``
rewrites them in the pages (so that they read as Markdown too), the MkDocs build (this file is its hook) fills
them afresh, and the test suite checks that the committed pages are current. The markers:
    <!-- table: train-options -->   every ``trajdiff train`` flag: default and help, from the config dataclasses
    <!-- table: eval-options -->    likewise for ``trajdiff eval`` (and bench-options, export-options)
    <!-- table: presets -->         Diffusion-QL's per-dataset settings (trajdiff.presets)
    <!-- table: budgets -->         the bench budgets; <!-- table: methods -->, <!-- table: suites -->
    <!-- table: datasets-d4rl -->    the D4RL-sized datasets, from their committed ``trajdiff data info --json``
                                     records in docs/datasets-d4rl/
A marker nobody knows, or one without its end line, fails the build.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^<!-- table: ([a-z0-9-]+) -->$", re.MULTILINE)
END = "<!-- end table -->"
BLOCK = re.compile(r"^<!-- table: ([a-z0-9-]+) -->\n(?:.*?\n)??<!-- end table -->$", re.MULTILINE | re.DOTALL)


def field_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string literal that follows its annotation)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def shown_default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
    else:
        return "(required)"
    if isinstance(value, tuple):
        return " ".join(map(str, value)) or "(none)"
    return "(none)" if value is None else str(value)


def option_rows(cls: type) -> list[tuple[str, str, str]]:
    """(flag, default, help) of every field, nested dataclasses flattened as tyro's OmitArgPrefixes does."""
    docs, hints, rows = field_docstrings(cls), typing.get_type_hints(cls), []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            rows += option_rows(hint)
            continue
        flag = field.name.replace("_", "-")
        if typing.get_origin(hint) is typing.Annotated:  # a positional argument
            flag = flag.upper()
        else:
            flag = f"--{flag}"
        rows.append((flag, shown_default(field), docs.get(field.name, "")))
    return rows


def markdown_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def options_table(cls: type) -> str:
    return markdown_table(("option", "default", "what it does"),
                          [(f"`{flag}`", f"`{default}`", help_text) for flag, default, help_text in option_rows(cls)])


KIND_ORDER = ("random", "medium", "medium-replay", "expert", "medium-expert")


def datasets_table(folder: Path) -> str:
    """One row per dataset record (``trajdiff data info FILE --json``): size, episodes, ends, mean return and its
    D4RL-normalised level, the policy, and the start of the content digest (the record holds all of it)."""
    import json

    from trajdiff.data.registry import normalized_score

    records = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    if not records:
        raise ValueError(f"no dataset records in {folder}")

    def order(record: dict) -> tuple[str, int]:
        body, kind = record["name"].removesuffix(".hdf5").split("-", 1)
        return body, KIND_ORDER.index(kind)

    return markdown_table(("dataset", "transitions", "episodes", "terminals / timeouts", "mean return",
                           "normalised", "policy", "sha256 (first 16)"), [
        (record["name"].removesuffix(".hdf5"), f"{record['transitions']:,}", f"{record['episodes']:,}",
         f"{record['terminals']:,} / {record['timeouts']:,}", f"{record['return']['mean']:.1f}",
         f"{normalized_score(record['env_id'], record['return']['mean']):.1f}", record["policy"],
         f"`{record['digest'][:16]}`") for record in sorted(records, key=order)])


def table(name: str) -> str:
    from trajdiff.bench.baselines import BASELINES
    from trajdiff.bench.budgets import BUDGETS
    from trajdiff.bench.methods import METHODS, changed_fields
    from trajdiff.commands import bench
    from trajdiff.commands.eval import EvalConfig
    from trajdiff.commands.export import ExportConfig
    from trajdiff.commands.train_config import TrainConfig
    from trajdiff.presets import PRESETS

    if name.endswith("-options"):
        classes = {"train": TrainConfig, "eval": EvalConfig, "bench": bench.BenchConfig, "export": ExportConfig}
        return options_table(classes[name.removesuffix("-options")])
    if name == "presets":
        return markdown_table(("preset", "grad-norm", "actor-lr", "eta", "max-q-backup", "lr-decay", "updates"), [
            (f"`{name}`", preset.grad_norm, preset.actor_lr, preset.eta, preset.max_q_backup, preset.lr_decay,
             f"{preset.updates:,}") for name, preset in PRESETS.items()])
    if name == "budgets":
        return markdown_table(("budget", "updates", "evaluate every", "episodes", "seeds"), [
            (f"`{name}`", f"{budget.updates:,}", f"{budget.eval_every:,}", budget.eval_episodes, budget.seeds)
            for name, budget in BUDGETS.items()])
    if name == "methods":
        rows = [(f"`{name}`", ", ".join(f"{key}={value}" for key, value in changed_fields(method.agent).items())
                 or "none", "yes" if method.authors_settings else "")
                for name, method in METHODS.items()]
        rows += [(f"`{method}`", "d3rlpy baseline (needs `make baselines-env`)", "") for method in BASELINES]
        return markdown_table(("method", "changes to Diffusion-QL's defaults",
                               "takes the authors' per-dataset settings"), rows)
    if name == "datasets-d4rl":
        return datasets_table(Path(__file__).parent / "datasets-d4rl")
    if name == "suites":
        return markdown_table(("suite", "datasets (files in --data-dir)"), [
            (f"`{suite}`", ", ".join(f"`{dataset}`" for dataset in datasets))
            for suite, datasets in bench.SUITES.items()])
    raise ValueError(f"unknown table marker {name!r}")


def filled(markdown: str) -> str:
    """``markdown`` with every table block holding its table as the code gives it now."""
    if len(MARKER.findall(markdown)) != len(BLOCK.findall(markdown)):
        raise ValueError(f"a '<!-- table: NAME -->' line without its '{END}' line")
    return BLOCK.sub(lambda match: f"<!-- table: {match.group(1)} -->\n{table(match.group(1))}\n{END}", markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return filled(markdown)


if __name__ == "__main__":
    for page in sorted(Path(__file__).parent.glob("*.md")):
        text = page.read_text()
        if filled(text) != text:
            page.write_text(filled(text))
            print(f"rewrote {page}")
