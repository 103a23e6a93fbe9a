"""Train a SAC behaviour policy with stable-baselines3 and keep what D4RL's protocol needs.

A run folder holds:

- ``sac_<step>.zip``: full SB3 checkpoints every ``checkpoint_every`` environment steps;
- ``log.json``: a list of ``{step, ret_mean, ret_std, wall_s}``, one per checkpoint, the return
  of ``eval_episodes`` deterministic evaluation episodes;
- ``replay.npz``: every transition SAC collected, in collection order, with SB3's semantics
  (``dones`` true at every episode end, ``timeouts`` at the time-limit ones). medium-replay is
  cut from it;
- ``run.json``: the environment, trainer, seed and target steps, and every start that reached a checkpoint: the
  step it began at, code commit, CPU, command line and library versions.

Two trainers run the same SAC (stable-baselines3's defaults, D4RL's algorithm): ``sb3``
(stable-baselines3, PyTorch) and ``sbx`` (its JAX twin, the ``sbx`` extra), whose jit-compiled
update makes a CPU step about twice as cheap (``benchmarks/behavior.py``). A run keeps the trainer
it started with.

Running the command again on the same folder with a larger ``--steps`` continues from the last
checkpoint (policy, optimiser, entropy coefficient and replay buffer), so a killed run loses at
most ``checkpoint_every`` steps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from trajdiff.errors import TrajdiffError
from trajdiff.files import atomic_write

Trainer = Literal["sb3", "sbx"]


def sac_class(trainer: Trainer) -> type:
    """The SAC class of ``trainer``, single-threaded (SAC at batch 256 runs fastest so on small CPUs)."""
    if trainer == "sb3":
        import torch
        from stable_baselines3 import SAC

        torch.set_num_threads(1)
        return SAC
    # XLA reads its flags when JAX first starts: set before the import, kept if the user set them
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    try:
        from sbx import SAC
    except ImportError:
        raise TrajdiffError("--trainer sbx needs the sbx extra: pip install 'trajdiff[sbx]'") from None
    return SAC


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"sac_{step}.zip"


def load_replay(buffer, path: Path, steps: int) -> None:  # noqa: ANN001 - an SB3 ReplayBuffer
    """Refill a fresh SB3 buffer with the first ``steps`` saved transitions.

    The episode running at the checkpoint is cut there (training restarts from a reset), so its
    last stored step is marked a time-limit end: a truncation, as it really was.
    """
    replay = np.load(path)
    size = min(steps, len(replay["rewards"]))
    for key in ("observations", "next_observations", "actions", "rewards"):
        getattr(buffer, key)[:size, 0] = replay[key][:size]
    buffer.dones[:size, 0] = replay["dones"][:size]
    buffer.timeouts[:size, 0] = replay["timeouts"][:size]
    if size and not replay["dones"][size - 1]:
        buffer.dones[size - 1, 0] = buffer.timeouts[size - 1, 0] = True
    buffer.pos = size


def save_replay(buffer, path: Path) -> None:  # noqa: ANN001 - an SB3 ReplayBuffer
    """Save the first ``buffer.pos`` transitions of a single-env SB3 replay buffer, in order."""
    size = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {
        "observations": buffer.observations[:size, 0],
        "next_observations": buffer.next_observations[:size, 0],
        "actions": buffer.actions[:size, 0],
        "rewards": buffer.rewards[:size, 0],
        "dones": buffer.dones[:size, 0].astype(bool),
        "timeouts": buffer.timeouts[:size, 0].astype(bool),
    }
    atomic_write(path, lambda tmp: np.savez(tmp.open("wb"), **arrays))
