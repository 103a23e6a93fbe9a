"""The DDPM noise-prediction (behaviour-cloning) loss."""

from __future__ import annotations

import torch

from trajdiff.diffusion.sampler import Denoiser
from trajdiff.diffusion.schedules import NoiseSchedule


def denoising_loss(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    actions: torch.Tensor,
    weights: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """mean_b w_b * mean_d (eps_theta(x_t, t, c_b) - eps)^2 with t ~ U{0..T-1}, eps ~ N(0, I).

    Without weights this is Diffusion-QL's loss (a plain mean over batch and action dims).
    Shapes: actions (B, Da), weights (B,) or None -> scalar; ``denoiser`` is conditioned on the B
    contexts c_b.
    """
    batch = actions.shape[0]
    t = torch.randint(0, schedule.steps, (batch,), device=actions.device, generator=generator)
    noise = torch.randn(actions.shape, device=actions.device, generator=generator)
    error = (denoiser(schedule.q_sample(actions, t, noise), t) - noise) ** 2
    if weights is None:
        return error.mean()
    return (error.mean(dim=1) * weights).mean()
