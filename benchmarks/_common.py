"""Helpers shared by the benchmark scripts: what ran the benchmark, and resident memory."""

from __future__ import annotations

import os

import torch

from trajdiff.provenance import provenance


def resident_memory_mb() -> float:
    """Current resident set size of this process, in MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def hardware() -> dict[str, object]:
    """What ran the benchmark, for its JSON line: code commit, CPU and GPU model, command line, library versions
    (trajdiff.provenance.provenance), and the cores and threads the timings had."""
    return {**provenance(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
