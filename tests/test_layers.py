"""The house's layering: the library (every module but the commands, the CLI and the figures) imports no command,
no tyro and no matplotlib, so that it can be used from Python without the command-line tool's dependencies."""

import pkgutil
import subprocess
import sys

import trajdiff

FRONT = ("trajdiff.commands", "trajdiff.cli", "trajdiff.plots", "trajdiff.bench.report")
"""The commands and what draws figures for them (the report's figures come from plots.py)."""
ELSEWHERE = ("trajdiff.bench.d3rlpy_train",)
"""Runs in the d3rlpy virtualenv, not in trajdiff's."""
LIBRARIES = ("tyro", "matplotlib")
"""What the command line and the figures need, and the library does not."""


def library_modules() -> list[str]:
    names = [module.name for module in pkgutil.walk_packages(trajdiff.__path__, "trajdiff.")]
    return [name for name in names if not name.startswith(FRONT + ELSEWHERE)]


def test_the_library_imports_no_command_no_tyro_and_no_matplotlib():
    modules = library_modules()
    assert {"trajdiff.agent", "trajdiff.data.sampler", "trajdiff.engine", "trajdiff.streams"} <= set(modules)
    program = "import sys\n" + "".join(f"import {name}\n" for name in modules) + (
        f"print(' '.join(sorted(name for name in sys.modules if name.split('.')[0] in {LIBRARIES} "
        f"or name.startswith({FRONT}))))")
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    assert loaded.split() == []
