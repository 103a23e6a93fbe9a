"""Peak RSS of the old update (commit 65508d3, checked out at /tmp/old) at one configuration per process.

Usage: PYTHONPATH=/tmp/old python old_one_config.py HISTORY   (HISTORY 1: n-step 1; 8: n-step 5), K = 8.
Prints one JSON line: the old benchmark's own measurement (20 warm-up updates, then 5 s of updates).
"""

import json
import sys

import torch

sys.path.insert(0, "/tmp/old/benchmarks")
from sampler import synthetic_dataset  # noqa: E402
from throughput import measure  # noqa: E402

history = int(sys.argv[1])
n_step = {1: 1, 8: 5}[history]
result = measure(synthetic_dataset(100_000), torch.device("cpu"), history, n_step, 256, 8, 5.0)
print(json.dumps({"code": "65508d3", "history_len": history, "n_step": n_step, "members": 8, **result}))
