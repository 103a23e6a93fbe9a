"""trajdiff: trajectory-aware offline RL with diffusion policies."""

__version__ = "0.1.0"
