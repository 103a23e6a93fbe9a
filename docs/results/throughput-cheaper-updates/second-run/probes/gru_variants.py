import statistics
import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[5] / "benchmarks"))
from sampler import synthetic_dataset
from throughput import build

from trajdiff.nets import members as M
from trajdiff.nets.members import member_matmul

current = M.MemberGRU.forward


def per_step(self, x):
    hidden = self.hidden_dim
    steps = x.unbind(dim=2)
    for w_input, w_hidden, b_input, b_hidden in zip(
        self.input_weights, self.hidden_weights, self.input_biases, self.hidden_biases
    ):
        h = x.new_zeros(x.shape[0], x.shape[1], hidden)
        outputs = []
        for step_input in steps:
            gates = member_matmul(step_input, w_input, b_input)
            gates_h = member_matmul(h, w_hidden, b_hidden)
            reset, update = torch.sigmoid(gates[..., : 2 * hidden] + gates_h[..., : 2 * hidden]).split(hidden, -1)
            candidate = torch.tanh(torch.addcmul(gates[..., 2 * hidden :], reset, gates_h[..., 2 * hidden :]))
            h = torch.lerp(candidate, h, update)
            outputs.append(h)
        steps = outputs
    return torch.stack(steps, dim=2)


def bias_late(self, x):
    members, batch, horizon, _ = x.shape
    hidden = self.hidden_dim
    for w_input, w_hidden, b_input, b_hidden in zip(
        self.input_weights, self.hidden_weights, self.input_biases, self.hidden_biases
    ):
        gates_x = member_matmul(x.reshape(members, batch * horizon, -1), w_input).view(
            members, batch, horizon, 3 * hidden
        )
        h = x.new_zeros(members, batch, hidden)
        outputs = []
        for gates in gates_x.unbind(dim=2):
            gates = gates + b_input
            gates_h = member_matmul(h, w_hidden, b_hidden)
            reset, update = torch.sigmoid(gates[..., : 2 * hidden] + gates_h[..., : 2 * hidden]).split(hidden, -1)
            candidate = torch.tanh(torch.addcmul(gates[..., 2 * hidden :], reset, gates_h[..., 2 * hidden :]))
            h = torch.lerp(candidate, h, update)
            outputs.append(h)
        x = torch.stack(outputs, dim=2)
    return x


if __name__ == "__main__":
    q = sys.argv[1]
    ds = synthetic_dataset(100_000)
    eng = build(ds, torch.device("cpu"), 8, 5, 256, 5, q_action=q)
    for _ in range(5):
        eng.update()
    res = {"cur": [], "new": []}
    for _r in range(20):
        for name, f in (("cur", current), ("new", per_step)):
            M.MemberGRU.forward = f
            eng.update()
            t = time.perf_counter()
            for _ in range(3):
                eng.update()
            res[name].append((time.perf_counter() - t) / 3)
    ratios = [o / n for o, n in zip(res["cur"], res["new"])]
    for k, v in res.items():
        print(k, "median ms", round(1000 * statistics.median(v), 1))
    print(
        "median ratio cur/new",
        round(statistics.median(ratios), 3),
        "quartiles",
        [round(x, 3) for x in statistics.quantiles(ratios, n=4)],
    )
