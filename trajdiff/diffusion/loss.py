"""The DDPM noise-prediction (behaviour-cloning) loss."""

from __future__ import annotations

import torch

from trajdiff.diffusion.reverse import NoisePredictor
from trajdiff.diffusion.schedules import NoiseSchedule


def denoising_loss(predict_noise: NoisePredictor, schedule: NoiseSchedule, actions: torch.Tensor,
                   t: torch.Tensor, noise: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean_b w_b * mean_d (eps_theta(x_t, t_b, c_b) - eps_b)^2, per member.

    t ~ U{0..T-1} and eps ~ N(0, I) come in as arguments (drawn by the caller). Without weights this is
    Diffusion-QL's loss, a plain mean over batch and action dims.
    Shapes: actions (K, B, Da), t (K, B), noise (K, B, Da), weights (K, B) or None -> (K,).
    """
    error = (predict_noise(schedule.q_sample(actions, t, noise), t) - noise) ** 2
    if weights is None:
        return error.mean(dim=(1, 2))
    return (error.mean(dim=2) * weights).mean(dim=1)
