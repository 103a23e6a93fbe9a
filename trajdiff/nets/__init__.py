"""Networks: forward passes only. Losses, optimisers and targets live in the agent."""

from trajdiff.nets.critic import TwinCritic
from trajdiff.nets.denoiser import Denoiser
from trajdiff.nets.history import HistoryEncoder

__all__ = ["Denoiser", "HistoryEncoder", "TwinCritic"]
