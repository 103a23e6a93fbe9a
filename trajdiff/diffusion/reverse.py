"""Ancestral DDPM sampling of actions, given any noise-predicting callable and the noise to use."""

from __future__ import annotations

from collections.abc import Callable

import torch

from trajdiff.diffusion.schedules import NoiseSchedule

NoisePredictor = Callable[[torch.Tensor, torch.Tensor | int], torch.Tensor]
"""(noisy action x_t (..., Da), step: an int for every row, or an int64 tensor of x_t's leading shape)
-> predicted noise (..., Da), for one batch of contexts fixed beforehand."""


def ddpm_sample(predict_noise: NoisePredictor, schedule: NoiseSchedule, noise: torch.Tensor,
                max_action: float) -> torch.Tensor:
    """Draw actions by the reverse process, as Diffusion-QL does, from the given Gaussian draws.

    x_T = noise[0]; at step t the predicted x_0 is clipped to [-max_action, max_action], then
    x_{t-1} = mean + sigma_t * noise[T - t] of q(x_{t-1} | x_t, x_0) (no noise at the last step);
    the result is clipped again. The draws come in as an argument so that the chain is a pure
    function (each member of a batch draws its own, see trajdiff.streams.MemberRandom).
    Differentiable through the denoiser (the Q-loss needs it). Every row is at the same step, so the
    step goes to the denoiser and the schedule as one int (no per-row gathers).
    Shapes: noise (T, ..., Da) -> actions (..., Da).
    """
    x = noise[0]
    for step in reversed(range(schedule.steps)):
        x0 = schedule.predict_start_from_noise(x, step, predict_noise(x, step)).clamp(-max_action, max_action)
        mean, log_variance = schedule.posterior(x0, x, step)
        x = mean + (0.5 * log_variance).exp() * noise[schedule.steps - step] if step > 0 else mean
    return x.clamp(-max_action, max_action)
