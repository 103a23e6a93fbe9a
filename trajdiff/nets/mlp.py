"""Mish, the activation of every Diffusion-QL network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _MishThroughExp(torch.autograd.Function):
    """mish(x) = x tanh(softplus(x)) = x n / (n + 2) with n = e^x (e^x + 2): one exp, no tanh or log.

    PyTorch's CPU mish kernel spends most of its time in tanh (on one thread, about 60% of a
    256 x 256 matmul here); this form costs less than half of that, forward and backward, and agrees
    with F.mish to float32 rounding (tests/nets/test_mlp.py). A whole update on one thread runs about
    25% faster; on two threads, where PyTorch splits its kernel, the two are even (docs/performance.md).
    Inputs are clamped at 20 inside the exp, past which tanh(softplus(x)) is 1 in float32, so e^x
    never overflows.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        exp_x = torch.clamp(x, max=20.0).exp_()
        n = exp_x.add(2.0).mul_(exp_x)
        tanh_softplus = n.div_(n + 2.0)  # in place: every temporary costs a pass over memory
        ctx.save_for_backward(x, tanh_softplus, exp_x)
        return x * tanh_softplus

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        x, tanh_softplus, exp_x = ctx.saved_tensors
        sigmoid = exp_x / (exp_x + 1.0)  # d softplus / dx
        derivative = tanh_softplus.square().neg_().add_(1.0).mul_(sigmoid).mul_(x).add_(tanh_softplus)
        return derivative.mul_(grad)


class Mish(nn.Module):
    """Mish activation: the exp form on CPU, PyTorch's fused kernel elsewhere (one launch on a GPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MishThroughExp.apply(x) if x.device.type == "cpu" else F.mish(x)
