"""What ran a piece of work, recorded beside every result: the code commit, the machine, the command line and the
libraries."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import torch


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide results, recorded beside every run."""
    from importlib.metadata import PackageNotFoundError, version

    import trajdiff

    versions = {"trajdiff": trajdiff.__version__}
    for name in ("torch", "numpy", "gymnasium", "mujoco", "h5py", "stable-baselines3", "minari"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name with its x86 family and model numbers (Linux /proc/cpuinfo), else what the platform
    module knows. The name alone can cover several microarchitectures ("AMD EPYC" is Zen 2 as well as Zen 4), and
    code compiled for the machine (JAX's, so a SAC behaviour run) can give different numbers on each."""
    import platform

    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():  # the first processor's block
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


@functools.cache
def code_commit() -> str:
    """The git commit of the trajdiff code that runs (with '+changes' when the package's or the benchmarks' files
    differ from it), or 'unknown' outside a git checkout. Read once per process: the code it ran is what it loaded
    (a K-member start records it K times)."""
    import subprocess

    package = Path(__file__).resolve().parent
    code = [str(package), str(package.parent / "benchmarks")]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", *code], cwd=package,
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+changes" if changed else commit


COMMAND_LINE: list[str] = []
"""The trajdiff command being run (set by the CLI), for provenance; empty when the library is called from Python."""


def provenance() -> dict[str, Any]:
    """What ran a piece of work: the code commit, the CPU (and GPU) model, the command line (the Python program's
    when trajdiff is used as a library) and the libraries."""
    import shlex

    return {"code_commit": code_commit(), "cpu": cpu_model(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "command": shlex.join(COMMAND_LINE or sys.argv), "versions": library_versions()}
