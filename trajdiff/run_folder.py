"""A run folder that a training process owns: checked before any work, locked while training, left clean."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from trajdiff.checkpoint import CHECKPOINT_NAME
from trajdiff.errors import TrajdiffError

LOCK_NAME = ".lock"


def check_creatable(path: Path) -> None:
    """Raise unless ``path`` is a folder, or one that can be made, and writable (nothing is created)."""
    if path.exists() and not path.is_dir():
        raise TrajdiffError(f"{path} is a file, not a run folder; give a folder with --out / --resume")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise TrajdiffError(f"cannot create {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrajdiffError(f"cannot write to {existing} (permission denied), so not to {path}")


class RunFolder:
    """A member's folder while a process trains in it: created, locked (``.lock`` holds the pid), cleaned.

    The lock is an advisory ``flock``: the kernel drops it when the process dies, even by kill -9, so a
    killed run never leaves a stale lock, while a second live process gets a one-line error naming the
    holder. Temporary checkpoint files that a kill left behind are removed on opening.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock = open(path / LOCK_NAME, "a+")  # noqa: SIM115 - held for the run's lifetime
        except OSError as error:
            raise TrajdiffError(f"cannot create run folder {path} ({error.strerror or error})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "unknown"
            self._lock.close()
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise TrajdiffError(f"{path} is in use by another trajdiff process (pid {holder}); wait for it "
                                    "or choose another --out") from None
            raise TrajdiffError(f"cannot lock {path} ({error.strerror})") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        for orphan in path.glob(f".{CHECKPOINT_NAME}.*.tmp"):
            orphan.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the lock (the file stays; holding it is what counts)."""
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
