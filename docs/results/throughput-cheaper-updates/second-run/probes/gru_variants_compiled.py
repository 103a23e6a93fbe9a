import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[5] / "benchmarks"))
from gru_variants import bias_late, per_step
from sampler import synthetic_dataset
from throughput import build

from trajdiff.nets import members as M

variant, q, h = sys.argv[1], sys.argv[2], int(sys.argv[3])
if variant == "new":
    M.MemberGRU.forward = per_step
if variant == "late":
    M.MemberGRU.forward = bias_late
ds = synthetic_dataset(100_000)
eng = build(ds, torch.device("cpu"), h, 5 if h == 8 else 1, 256, 5, compile_update=True, q_action=q)
for _ in range(10):
    eng.update()
best = []
for _r in range(3):
    t = time.perf_counter()
    for _ in range(15):
        eng.update()
    best.append(5 * 15 / (time.perf_counter() - t))
print(variant, q, h, [round(x, 1) for x in best])
