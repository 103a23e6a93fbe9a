"""Ancestral DDPM sampling of actions, given any noise-predicting callable."""

from __future__ import annotations

from collections.abc import Callable

import torch

from trajdiff.diffusion.schedules import NoiseSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(noisy action (B, Da), step (B,), context (B, C)) -> predicted noise (B, Da)."""


def ddpm_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    context: torch.Tensor,
    action_dim: int,
    max_action: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one action per context row by the reverse process, as Diffusion-QL does.

    x_T ~ N(0, I); at each step the predicted x_0 is clipped to [-max_action, max_action], then
    x_{t-1} ~ q(x_{t-1} | x_t, x_0) (no noise at the last step); the result is clipped again.
    Differentiable through the denoiser (the Q-loss needs it). Shapes: context (B, C) -> (B, Da).
    """
    batch = context.shape[0]
    x = torch.randn(batch, action_dim, device=context.device, generator=generator)
    for step in reversed(range(schedule.steps)):
        t = torch.full((batch,), step, device=context.device, dtype=torch.long)
        x0 = schedule.predict_start_from_noise(x, t, denoiser(x, t, context)).clamp(-max_action, max_action)
        mean, log_variance = schedule.posterior(x0, x, t)
        if step > 0:
            x = mean + (0.5 * log_variance).exp() * torch.randn(x.shape, device=x.device, generator=generator)
        else:
            x = mean
    return x.clamp(-max_action, max_action)
