"""Atomic checkpoints that resume a run exactly, and loading them for evaluation."""

from __future__ import annotations

import contextlib
import errno
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajdiff.errors import TrajdiffError
from trajdiff.files import staged_write

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 3
"""3: one member's slice of a batched agent (trajdiff.agent_state.member_state), int64 update counts."""


def save_checkpoints(paths: list[Path], previous: int | None, payloads: list[dict[str, Any]]) -> None:
    """Write each member's ``payload`` plus every global RNG state, through temp files and renames.

    All temporary files are written before the first rename, so a kill leaves every member at the
    previous checkpoint or (unless it lands between the renames, a window of microseconds) all at the new one;
    a resume refuses members at different steps. ``previous``: the update of the checkpoint a failure leaves in
    place (None: there is none), for the message.
    """
    left = "the previous checkpoint is intact" if previous is not None else "no checkpoint had been written yet"
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    with contextlib.ExitStack() as stack:
        commits = []
        for path, payload in zip(paths, payloads):
            try:
                commits.append(stack.enter_context(staged_write(path, lambda temporary, payload=payload: torch.save(
                    {**payload, "rng": rng, "format": FORMAT}, temporary))))
            except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError("unexpected pos")
                raise TrajdiffError(f"cannot write the checkpoint {path} ({write_failure(path, error)}); "
                                    f"{left}") from None
        for commit in commits:
            commit()


def write_failure(path: Path, error: BaseException) -> str:
    """What stopped a write, in words: a full disk is named as such whatever the library's message."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC or shutil.disk_usage(path.parent).free < 2**20:
        return "no space left on the device"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def member_folders(run: Path) -> list[Path]:
    """The folders of a run's members: ``run`` itself when it holds a checkpoint, else its seed-S folders."""
    run = Path(run)
    if (run / CHECKPOINT_NAME).is_file() or not run.is_dir():
        return [run]
    folders = sorted((folder for folder in run.glob("seed-*") if (folder / CHECKPOINT_NAME).is_file()),
                     key=lambda folder: int(folder.name.removeprefix("seed-")) if folder.name[5:].isdigit() else 0)
    return folders or [run]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint file, or the one inside a run folder, onto the CPU.

    Modules and optimisers copy the tensors to their own device when they load them; generator
    states must stay CPU tensors. One-line errors for bad paths and files.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise TrajdiffError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise TrajdiffError(f"{path} is not a readable trajdiff checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or "agent" not in payload or "config" not in payload:
        raise TrajdiffError(f"{path} is not a trajdiff checkpoint")
    if payload.get("format", 1) != FORMAT:
        raise TrajdiffError(f"{path} was written by an older trajdiff (checkpoint format {payload.get('format', 1)}, "
                            f"this one reads {FORMAT}); train it again")
    return payload


def restore_global_rng(payload: dict[str, Any]) -> None:
    torch.set_rng_state(payload["rng"]["torch"].cpu())
    np.random.set_state(payload["rng"]["numpy"])
    random.setstate(payload["rng"]["python"])
