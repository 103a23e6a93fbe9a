import statistics
import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[5] / "benchmarks"))
from sampler import synthetic_dataset
from throughput import build

from trajdiff.nets import members as M
from trajdiff.nets.members import member_matmul

new_forward = M.MemberGRU.forward


def old_forward(self, x):
    members, batch, horizon, _ = x.shape
    hidden = self.hidden_dim
    for w_input, w_hidden, b_input, b_hidden in zip(
        self.input_weights, self.hidden_weights, self.input_biases, self.hidden_biases
    ):
        gates_x = member_matmul(x.reshape(members, batch * horizon, -1), w_input, b_input).view(
            members, batch, horizon, 3 * hidden
        )
        h = x.new_zeros(members, batch, hidden)
        outputs = []
        for step in range(horizon):
            gates_h = member_matmul(h, w_hidden, b_hidden)
            gates = gates_x[:, :, step]
            reset, update = torch.sigmoid(gates[..., : 2 * hidden] + gates_h[..., : 2 * hidden]).split(hidden, -1)
            candidate = torch.tanh(torch.addcmul(gates[..., 2 * hidden :], reset, gates_h[..., 2 * hidden :]))
            h = torch.lerp(candidate, h, update)
            outputs.append(h)
        x = torch.stack(outputs, dim=2)
    return x


ds = synthetic_dataset(100_000)
eng = build(ds, torch.device("cpu"), 8, 5, 256, 5)
for _ in range(5):
    eng.update()
res = {"old": [], "new": []}

for _r in range(int(sys.argv[1]) if len(sys.argv) > 1 else 20):
    for name, f in (("old", old_forward), ("new", new_forward)):
        M.MemberGRU.forward = f
        eng.update()
        t = time.perf_counter()
        for _ in range(3):
            eng.update()
        res[name].append((time.perf_counter() - t) / 3)
ratios = [o / n for o, n in zip(res["old"], res["new"])]
for k, v in res.items():
    print(k, "median ms", round(1000 * statistics.median(v), 1))
print(
    "median ratio old/new",
    round(statistics.median(ratios), 3),
    "quartiles",
    [round(q, 3) for q in statistics.quantiles(ratios, n=4)],
)
