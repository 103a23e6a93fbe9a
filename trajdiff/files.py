"""Files written so that a kill never leaves a torn one, and what a write would create on the disk."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


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


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

    A kill at any moment leaves either the old file or the new one, never a torn file.
    """
    with staged_write(path, write) as commit:
        commit()


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """Atomically write ``rows`` as a CSV file with a header (``columns``, or the first row's keys)."""

    def write(temporary: Path) -> None:
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns if columns is not None else list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def atomic_write_json(path: Path, payload: Any) -> None:
    """Atomically write ``payload`` as indented JSON."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n"))


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
