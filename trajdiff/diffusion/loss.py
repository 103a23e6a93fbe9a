"""The DDPM noise-prediction (behaviour-cloning) loss, and the one-step action reconstruction it allows."""

from __future__ import annotations

import torch

from trajdiff.diffusion.reverse import NoisePredictor
from trajdiff.diffusion.schedules import NoiseSchedule


def noise_prediction(predict_noise: NoisePredictor, schedule: NoiseSchedule, actions: torch.Tensor,
                     t: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The noised actions x_t = sqrt(abar_t) a + sqrt(1 - abar_t) eps and the denoiser's eps_theta(x_t, t, c).

    t ~ U{0..T-1} and eps ~ N(0, I) come in as arguments (drawn by the caller).
    Shapes: actions (K, B, Da), t (K, B), noise (K, B, Da) -> x_t (K, B, Da), predicted (K, B, Da).
    """
    noisy = schedule.q_sample(actions, t, noise)
    return noisy, predict_noise(noisy, t)


def prediction_error(predicted: torch.Tensor, noise: torch.Tensor, weights: torch.Tensor | None = None,
                     step_mask: torch.Tensor | None = None) -> torch.Tensor:
    """mean_b w_b * mean_d (eps_theta - eps)^2 per member; without weights a plain mean (Diffusion-QL's). With a
    step mask (action chunks of h steps), each sample's error is the mean over its h steps' entries where the mask
    is True: the chunk's steps past its episode's end are left out.

    Shapes: predicted, noise (K, B, A), weights (K, B) or None, step_mask (K, B, h) bool or None -> (K,).
    """
    error = (predicted - noise) ** 2
    if step_mask is None:
        if weights is None:
            return error.mean(dim=(1, 2))
        per_sample = error.mean(dim=2)
    else:
        held = step_mask.to(error.dtype)
        per_step = error.unflatten(2, (step_mask.shape[2], -1)).mean(dim=3)  # (K, B, h)
        per_sample = (per_step * held).sum(dim=2) / held.sum(dim=2)
    return per_sample.mean(dim=1) if weights is None else (per_sample * weights).mean(dim=1)


def one_step_actions(schedule: NoiseSchedule, noisy: torch.Tensor, t: torch.Tensor, predicted: torch.Tensor,
                     max_action: float) -> torch.Tensor:
    """The action reconstructed in one step from a noised one: a_hat = (x_t - sqrt(1 - abar_t) eps_theta) /
    sqrt(abar_t), clipped to [-max_action, max_action] (Efficient Diffusion Policies, Kang et al. 2023).

    Differentiable through eps_theta. With eps_theta = eps it returns the action that was noised.
    Shapes: noisy, predicted (K, B, Da), t (K, B) -> (K, B, Da).
    """
    return schedule.predict_start_from_noise(noisy, t, predicted).clamp(-max_action, max_action)
