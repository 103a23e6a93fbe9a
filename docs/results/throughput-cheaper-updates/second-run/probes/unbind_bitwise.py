"""The unbind GRU forward against the per-step indexing one: outputs and gradients bitwise equal (prints True)."""

import torch

from trajdiff.nets.members import MemberGRU

src = (
    open(str(__import__("pathlib").Path(__file__).with_name("unbind_eager_ab.py")))
    .read()
    .split("ds = synthetic_dataset")[0]
)
g = {"__file__": str(__import__("pathlib").Path(__file__).with_name("unbind_eager_ab.py"))}
exec(src, g)

gru = MemberGRU(11, 64, 1, [torch.Generator().manual_seed(s) for s in range(3)])
x = torch.randn(3, 256, 8, 11, requires_grad=True)
out = []
for f in (g["old_forward"], MemberGRU.forward):
    for p in gru.parameters():
        p.grad = None
    x.grad = None
    y = f(gru, x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    out.append([y.detach().clone(), x.grad.clone(), *[p.grad.clone() for p in gru.parameters()]])
print(all(torch.equal(a, b) for a, b in zip(*out)))
