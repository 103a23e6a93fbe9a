"""Ancestral DDPM sampling of actions, given any noise-predicting callable."""

from __future__ import annotations

from collections.abc import Callable

import torch

from trajdiff.diffusion.schedules import NoiseSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor | int], torch.Tensor]
"""(noisy action (B, Da), step: (B,) int64 or one int for all rows) -> predicted noise (B, Da), for
one batch of contexts fixed beforehand (trajdiff.nets.Denoiser.condition)."""


def ddpm_sample(
    denoiser: Denoiser,
    schedule: NoiseSchedule,
    shape: tuple[int, int],
    max_action: float,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw actions of ``shape`` (B, Da) by the reverse process, as Diffusion-QL does.

    x_T ~ N(0, I); at each step the predicted x_0 is clipped to [-max_action, max_action], then
    x_{t-1} ~ q(x_{t-1} | x_t, x_0) (no noise at the last step); the result is clipped again.
    Differentiable through the denoiser (the Q-loss needs it). Every row is at the same step, so the
    step goes to the denoiser and the schedule as one int (no per-row gathers).
    """
    x = torch.randn(shape, device=device, generator=generator)
    for step in reversed(range(schedule.steps)):
        x0 = schedule.predict_start_from_noise(x, step, denoiser(x, step)).clamp(-max_action, max_action)
        mean, log_variance = schedule.posterior(x0, x, step)
        if step > 0:
            x = mean + (0.5 * log_variance).exp() * torch.randn(x.shape, device=x.device, generator=generator)
        else:
            x = mean
    return x.clamp(-max_action, max_action)
