"""What a run will need, bounded before any work: window lengths that episodes can hold, memory that exists.

An update's memory is dominated by the activations that the backward passes keep: per member and window,
about (2 chains x T diffusion steps + 4 critic passes) x (layers x width) floats for the networks, the J x R
chains of the target (J bootstrap states, R max-Q repeats), and the (1 + J) H x Do floats of the history and
bootstrap windows. The estimate below counts those with a margin of 2; it is a bound against settings that cannot
run (a batch of ten million, a history of a hundred thousand steps), not a prediction of peak memory.
"""

from __future__ import annotations

import os

import torch

from trajdiff.agent import AgentConfig
from trajdiff.errors import TrajdiffError

BYTES_PER_FLOAT = 4
SAFETY = 2


def update_memory_bytes(config: AgentConfig, members: int, batch_size: int, observation_dim: int,
                        q_repeats: int) -> int:
    """A rough upper estimate of one update's working memory, in bytes (see the module docstring)."""
    states = config.bootstrap_states
    network_passes = 2 * config.diffusion_steps + 4 + states * q_repeats * config.diffusion_steps
    per_window = (network_passes * 4 * config.hidden_dim
                  + (1 + states) * config.history_len * (observation_dim + 3 * config.history_hidden_dim))
    return SAFETY * BYTES_PER_FLOAT * members * batch_size * per_window


def available_memory_bytes(device: torch.device) -> int:
    """Free memory of the device: the GPU's free memory on CUDA, the machine's available memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as handle:
            fields = dict(line.split(":", 1) for line in handle)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_update_fits(needed: int, device: torch.device, what: str,
                      remedy: str = "use a smaller --batch-size, --history-len or fewer members") -> None:
    """One-line error when ``needed`` bytes exceed what the device has free."""
    available = available_memory_bytes(device)
    if needed > available:
        raise TrajdiffError(f"{what} needs about {needed / 2**30:.1f} GiB at a time, more than the "
                            f"{available / 2**30:.1f} GiB free on {device}; {remedy}")


def check_window_fits(option: str, length: int, longest_episode: int) -> None:
    """A history window or an n-step horizon longer than the longest episode holds nothing more than that
    episode (and would cost time and memory for nothing): refuse it."""
    if length > longest_episode:
        raise TrajdiffError(f"--{option} {length} is longer than the longest episode of the data "
                            f"({longest_episode} steps); at most {longest_episode} can be used")


def selection_memory_bytes(members: int, environments: int, candidates: int, hidden_dim: int,
                           diffusion_steps: int) -> int:
    """A rough upper estimate of action selection's working memory at evaluation, in bytes: every environment's
    candidates go through the reverse chain and the critic as one batch."""
    per_candidate = (diffusion_steps + 2) * 4 * hidden_dim
    return SAFETY * BYTES_PER_FLOAT * members * environments * candidates * per_candidate
