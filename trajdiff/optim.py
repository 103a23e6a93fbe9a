"""The per-member optimiser: Adam, gradient clipping and the learning-rate decay, each member on its own.

Hand-written because torch.optim cannot do this: its Adam takes one learning rate per parameter group and
clip_grad_norm_ one norm over all of a group's tensors, while here every tensor is (K, ...) and each member
k has its own learning rate, its own clip and its own gradient norm over its slices. Everything stays on
the device (no host reads), so that an update can be captured as one CUDA graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

LearningRateDecay = Literal["none", "cosine", "diffusion-ql"]


def learning_rate_factor(update_count: torch.Tensor, period: torch.Tensor, horizon: torch.Tensor) -> torch.Tensor:
    """Cosine decay as a pure function of the number of updates done.

    factor = 0.5 (1 + cos(pi min(floor(updates / period), horizon) / horizon)):

    period 1 and horizon = total updates is cosine to 0 over the run; period 50k and horizon 2000 is the
    published code (its scheduler steps once per 50k-update training call with T_max = 2000 epochs);
    horizon inf is no decay. Computed in float64 (exact for any int64 count), returned as float32.
    Shapes: update_count () int64; period, horizon (K,) -> (K,).
    """
    epochs = torch.minimum(torch.floor(update_count.double() / period.double()), horizon.double())
    return (0.5 * (1.0 + torch.cos(math.pi * epochs / horizon.double()))).float()


def decay_period_and_horizon(decay: LearningRateDecay, total_updates: int) -> tuple[float, float]:
    """(period, horizon) of :func:`learning_rate_factor` for a decay setting."""
    return {"none": (1.0, math.inf), "cosine": (1.0, float(max(total_updates, 1))),
            "diffusion-ql": (50_000.0, 2000.0)}[decay]


def member_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(K,) -> (K, 1, ..., 1) broadcastable against a (K, ...) tensor like ``like``."""
    return values.view(-1, *[1] * (like.dim() - 1))


class MemberAdam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) with a learning rate per member.

    The bias corrections count the updates taken from ``update_count``, the agent's one int64 device counter of
    updates done (read, never advanced, here): no host value (CUDA-graph capturable), exact however long a run
    goes, and no second count to keep in step. Parameters are (K, ...); lr (K,).
    """

    def __init__(self, parameters: Sequence[nn.Parameter], update_count: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameters = list(parameters)
        self.exp_avg = [torch.zeros_like(p) for p in self.parameters]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.parameters]
        self.update_count = update_count
        self.betas, self.eps = betas, eps

    @torch.no_grad()
    def update(self, lr: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        grads = [p.grad for p in self.parameters]
        taken = (self.update_count + 1).float()  # this update included
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1 - beta2)
        step_size = lr / (1 - beta1 ** taken)  # (K,)
        denominators = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denominators, torch.sqrt(1 - beta2 ** taken))
        torch._foreach_add_(denominators, self.eps)
        changes = torch._foreach_div(self.exp_avg, denominators)
        torch._foreach_mul_(changes, [member_view(step_size, p) for p in self.parameters])
        torch._foreach_sub_(self.parameters, changes)

    def state_dict(self) -> dict[str, list[torch.Tensor]]:
        """The moments, live (the agent's state tree holds them; trajdiff.agent_state slices and loads them)."""
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}


@torch.no_grad()
def clip_member_gradients(parameters: Sequence[nn.Parameter], max_norm: torch.Tensor) -> None:
    """clip_grad_norm_ for each member on its own: g_k *= min(1, max_norm_k / (||g_k|| + 1e-6)).

    ||g_k|| is the norm over all of member k's gradients; max_norm (K,) is inf where clipping is off.
    """
    norms = [torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in parameters]  # (K,) each
    norm = torch.linalg.vector_norm(torch.stack(norms), dim=0)
    coefficient = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_([p.grad for p in parameters], [member_view(coefficient, p) for p in parameters])


def apply_gradients(optimizer: MemberAdam, loss: torch.Tensor, max_norm: torch.Tensor, lr: torch.Tensor) -> None:
    """Gradients of the members' summed loss (K,) for the optimiser's parameters only, clipped per member, then
    one Adam update at each member's learning rate (K,)."""
    for parameter in optimizer.parameters:
        parameter.grad = None
    loss.sum().backward(inputs=optimizer.parameters)  # e.g. the critic's gradients from the actor's loss: unused
    clip_member_gradients(optimizer.parameters, max_norm)
    optimizer.update(lr)


@torch.no_grad()
def lerp_parameters(target: nn.Module, source: nn.Module, weight: torch.Tensor | float) -> None:
    """target <- target + weight * (source - target), for every parameter.

    A tensor weight () stays on the device (broadcast views, no host read), so the EMA's on/off gate
    needs no branch in a captured graph.
    """
    targets, sources = list(target.parameters()), list(source.parameters())
    if isinstance(weight, torch.Tensor):
        weight = [weight.expand_as(p) for p in targets]
    torch._foreach_lerp_(targets, sources, weight)
