"""Resident memory (current, and the process peak) of one K=8, history-8 configuration: built, after its first
update (with c: the compilation), after 21. Argument c: --compile-update; e: eager."""

import os
import resource
import sys

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[5] / "benchmarks"))
from sampler import synthetic_dataset
from throughput import build


def cur():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss(tag):
    print(
        tag,
        "rss",
        round(cur() / 2**20),
        "peak",
        round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        flush=True,
    )


ds = synthetic_dataset(100_000)
eng = build(ds, torch.device("cpu"), 8, 5, 256, 8, compile_update=sys.argv[1] == "c")
rss("built")
eng.update()
rss("first update")
for _ in range(20):
    eng.update()
rss("after 21")
