import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[5] / "benchmarks"))
from sampler import synthetic_dataset
from throughput import build

torch.set_num_threads(2)
h = int(sys.argv[1])
comp = sys.argv[2] == "c"
ds = synthetic_dataset(100_000) if True else None
eng = build(ds, torch.device("cpu"), h, 5 if h == 8 else 1, 256, 5, compile_update=comp)
for _ in range(10):
    eng.update()
t = time.perf_counter()
for _ in range(20):
    eng.update()
print("upd/s", 20 / (time.perf_counter() - t))
# sampler alone
t = time.perf_counter()
for _ in range(20):
    eng.sampler.draw(256)
print("sampler ms", (time.perf_counter() - t) / 20 * 1000)
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
    for _ in range(5):
        eng.update()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
