"""Small shared helpers: seeding, devices, atomic writes, library versions."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajdiff.errors import TrajdiffError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (the global generators libraries fall back on)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def generator_state(generator: torch.Generator) -> dict[str, Any]:
    """A generator's state with the device type it belongs to (a CUDA state does not fit a CPU generator)."""
    return {"device": generator.device.type, "state": generator.get_state()}


def restore_generator(generator: torch.Generator, saved: dict[str, Any], fresh_seed: int) -> bool:
    """Restore a state saved by :func:`generator_state` where the device type matches; elsewhere seed the
    generator with ``fresh_seed`` and return False (bitwise continuation holds only on the device type that
    wrote the state)."""
    if saved["device"] == generator.device.type:
        generator.set_state(saved["state"])
        return True
    generator.manual_seed(fresh_seed)
    return False


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise TrajdiffError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from error
    if resolved.type not in ("cpu", "cuda"):
        raise TrajdiffError(f"device {device!r} is not supported: trajdiff runs on cpu or cuda (auto, cpu, cuda, "
                            "cuda:N)")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TrajdiffError(f"device {device!r} asked for, but this PyTorch build sees no CUDA GPU")
    return resolved


@contextlib.contextmanager
def staged_write(path: Path, write: Callable[[Path], None]) -> Iterator[Callable[[], None]]:
    """Write ``path``'s new content to a temporary file in the same folder; yield the rename that commits it.

    Several files can be staged first and committed together; a temporary file not committed when the
    block ends (an error, a kill's KeyboardInterrupt) is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
    try:
        write(Path(temporary))
        yield lambda: os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


class GraphInputs:
    """An object whose tensors a captured CUDA graph reads by address: after :meth:`freeze`, re-binding an
    attribute that :meth:`read_by_graph` names raises (a graph would go on reading the old tensor); change it in
    place instead. The agent and the update engine are such objects."""

    frozen = False

    def read_by_graph(self, name: str) -> bool:
        """Whether the graph reads attribute ``name``: by default, every tensor and module."""
        return isinstance(self.__dict__.get(name), torch.Tensor | torch.nn.Module)

    def freeze(self) -> None:
        object.__setattr__(self, "frozen", True)

    def __setattr__(self, name: str, value: object) -> None:
        if self.frozen and self.read_by_graph(name):
            raise TrajdiffError(f"{type(self).__name__}.{name} is read by a captured CUDA graph: change it in "
                                "place, not by assignment")
        super().__setattr__(name, value)


def nearest_existing(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists (where a write to ``path`` would first touch the disk)."""
    while not path.exists():
        path = path.parent
    return path


def topmost_missing(path: Path) -> Path | None:
    """The outermost folder that ``path.mkdir(parents=True)`` would create, or None when ``path`` exists: what
    to remove again to leave the disk as it was."""
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

    A kill at any moment leaves either the old file or the new one, never a torn file.
    """
    with staged_write(path, write) as commit:
        commit()


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """Atomically write ``rows`` as a CSV file with a header (``columns``, or the first row's keys)."""
    import csv

    def write(temporary: Path) -> None:
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns if columns is not None else list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def atomic_write_json(path: Path, payload: Any) -> None:
    """Atomically write ``payload`` as indented JSON."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n"))


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


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


LOG_REFRESH_S = 60.0
"""How often a progress bar redraws when stderr is not a terminal (a log file, a pipe, a batch job)."""


def progress_bar(iterable: Any = None, **options: Any) -> Any:
    """A tqdm bar that redraws as usual on a terminal and at most once every LOG_REFRESH_S seconds into a log,
    which otherwise gets a line per update."""
    from tqdm import tqdm

    if not sys.stderr.isatty():
        options.setdefault("mininterval", LOG_REFRESH_S)
    return tqdm(iterable, **options)


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
