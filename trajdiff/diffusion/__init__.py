"""DDPM machinery that knows no network: beta schedules, the reverse sampler, the denoising loss."""

from trajdiff.diffusion.loss import noise_prediction, one_step_actions, prediction_error
from trajdiff.diffusion.reverse import ddpm_sample
from trajdiff.diffusion.schedules import NoiseSchedule, beta_schedule

__all__ = ["NoiseSchedule", "beta_schedule", "ddpm_sample", "noise_prediction", "one_step_actions",
           "prediction_error"]
