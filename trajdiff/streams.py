"""Every random stream of a run, derived from its member's seed in this one place.

A member's seed is the root of a ``numpy.random.SeedSequence``; each purpose below is one of its
spawned children (spawn key ``(index of the purpose, *path)``), and the child's first 32-bit word seeds
that stream's generator. Streams of different members, or of different purposes of one member, are
therefore independent: no stream of one member is another member's stream shifted by one (as
``seed + 1`` would be), and member k's streams depend on its seed alone.

Seeds are 32-bit because PyTorch's CPU generator (mt19937) draws from the low 32 bits of its seed only:
two 64-bit seeds equal in those bits would give the same numbers.

``path`` names a stream that starts later from the same root: the diffusion noise of a run resumed on
another device type at update u is ``stream_seed(seed, "diffusion", u)``, and the evaluation starts of
evaluation round r are ``stream_seed(seed, "evaluation-starts", r, i)`` for environment i.

A checkpoint saves each generator's state with its device type (:func:`generator_state`); a resume restores it
on the same device type and starts the stream afresh elsewhere (:func:`restore_generator`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from trajdiff.errors import require

PURPOSES = ("weights", "windows", "diffusion", "evaluation-actions", "evaluation-starts", "expertise", "libraries")
"""weights: initial network weights; windows: the trajectory sampler's step indices; diffusion: every draw of
an update (reverse chains, denoising steps and noise, the Q-head coin); evaluation-actions: the candidate
actions' noise and the softmax choice at evaluation; evaluation-starts: the evaluation environments' reset
seeds; expertise: the expertise mixture's initialisation; libraries: Python's, NumPy's and PyTorch's global
generators, for whatever a library draws from them."""

MAX_SEED = 2**32 - 1
"""Seeds are 0 .. 2^32 - 1."""


def check_seed(seed: int, flag: str = "--seed") -> None:
    """One-line error for a seed outside 0 .. 2^32 - 1."""
    require(0 <= seed <= MAX_SEED, f"{flag} must be in 0..{MAX_SEED} (got {seed})")


def stream_seed(seed: int, purpose: str, *path: int) -> int:
    """The 32-bit seed of member ``seed``'s stream for ``purpose`` (one of PURPOSES), at ``path``."""
    check_seed(seed)
    spawn_key = (PURPOSES.index(purpose), *path)
    return int(np.random.SeedSequence(seed, spawn_key=spawn_key).generate_state(1, np.uint32)[0])


def stream_generator(seed: int, purpose: str, *path: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with :func:`stream_seed`."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, purpose, *path))


def stack_members(tensors: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """torch.stack, without a copy for one member."""
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else torch.stack(tensors, dim)


class MemberRandom:
    """One generator per member on ``device``, each the ``purpose`` stream of that member's seed; a draw of
    shape S returns (K, *S), member k's part from its own generator only."""

    def __init__(self, seeds: Sequence[int], purpose: str, device: torch.device, *path: int) -> None:
        self.generators = [stream_generator(seed, purpose, *path, device=device) for seed in seeds]
        self.device = device

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        return stack_members([torch.randn(shape, generator=g, device=self.device) for g in self.generators])

    def integers(self, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return stack_members([torch.randint(high, shape, generator=g, device=self.device) for g in self.generators])

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return stack_members([torch.rand(shape, generator=g, device=self.device) for g in self.generators])


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
