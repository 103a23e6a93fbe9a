"""Beta schedules and the DDPM quantities derived from them (Ho et al. 2020; Diffusion-QL's VP)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import nn

ScheduleName = Literal["vp", "linear", "cosine"]


def beta_schedule(name: ScheduleName, steps: int) -> torch.Tensor:
    """(T,) float32 betas.

    vp (Diffusion-QL, from the variance-preserving SDE with beta_min 0.1, beta_max 10):
        beta_t = 1 - exp(-beta_min / T - (beta_max - beta_min) * (2t - 1) / (2 T^2)), t = 1..T
    linear: evenly from 1e-4 to 2e-2 (DDPM). cosine: Nichol & Dhariwal 2021 with s = 0.008,
    betas clipped at 0.999.
    """
    if name == "vp":
        t = np.arange(1, steps + 1)
        beta_min, beta_max = 0.1, 10.0
        alpha = np.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / steps**2)
        return torch.tensor(1 - alpha, dtype=torch.float32, device="cpu")
    if name == "linear":
        return torch.linspace(1e-4, 2e-2, steps, dtype=torch.float32, device="cpu")
    if name == "cosine":
        s = 0.008
        x = np.linspace(0, steps, steps + 1)
        alphas_cumprod = np.cos(((x / steps) + s) / (1 + s) * math.pi * 0.5) ** 2
        alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
        betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
        return torch.tensor(np.clip(betas, 0, 0.999), dtype=torch.float32, device="cpu")
    raise ValueError(f"unknown beta schedule {name!r} (vp, linear, cosine)")


class NoiseSchedule(nn.Module):
    """The forward process q(x_t | x_0) and posterior q(x_{t-1} | x_t, x_0) of a beta schedule.

    A module only so that its constant buffers follow ``.to(device)`` and checkpoints; it has no
    parameters. Shapes: x (B, Da), t (B,) int64 in [0, T), or one int for every row.
    """

    def __init__(self, name: ScheduleName = "vp", steps: int = 5) -> None:
        super().__init__()
        self.steps = steps
        betas = beta_schedule(name, steps)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, device="cpu"), alphas_cumprod[:-1]])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        buffers = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).sqrt(),
            "sqrt_recip_alphas_cumprod": (1.0 / alphas_cumprod).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / alphas_cumprod - 1).sqrt(),
            # log(0) at t = 0 is clipped, as in DDPM; t = 0 adds no noise anyway
            "posterior_log_variance": torch.log(posterior_variance.clamp(min=1e-20)),
            "posterior_mean_x0": betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
            "posterior_mean_xt": (1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod),
        }
        for key, value in buffers.items():
            self.register_buffer(key, value, persistent=False)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise."""
        return self.sqrt_alphas_cumprod[t, None] * x0 + self.sqrt_one_minus_alphas_cumprod[t, None] * noise

    def predict_start_from_noise(self, x_t: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """x_0 = x_t / sqrt(abar_t) - sqrt(1 / abar_t - 1) noise."""
        return self.sqrt_recip_alphas_cumprod[t, None] * x_t - self.sqrt_recipm1_alphas_cumprod[t, None] * noise

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor | int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = self.posterior_mean_x0[t, None] * x0 + self.posterior_mean_xt[t, None] * x_t
        return mean, self.posterior_log_variance[t, None]
