"""Atomic checkpoints that resume a run exactly, and loading them for evaluation."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajdiff.errors import TrajdiffError
from trajdiff.utils import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` plus every global RNG state, through a temp file and a rename."""
    payload = {**payload, "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                                  "python": random.getstate()}}
    atomic_write(path, lambda temporary: torch.save(payload, temporary))


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
    return payload


def restore_global_rng(payload: dict[str, Any]) -> None:
    torch.set_rng_state(payload["rng"]["torch"].cpu())
    np.random.set_state(payload["rng"]["numpy"])
    random.setstate(payload["rng"]["python"])
