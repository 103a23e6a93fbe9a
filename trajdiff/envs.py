"""Making Gymnasium environments, for evaluation and for collection alike, with one-line errors."""

from __future__ import annotations

import os

import gymnasium as gym

from trajdiff.errors import TrajdiffError


def make_environment(env_id: str, **kwargs: object) -> gym.Env:
    """``gym.make`` with a one-line error for unknown ids."""
    try:
        return gym.make(env_id, **kwargs)
    except Exception as error:
        raise environment_error(env_id, error) from None


def make_vector_environment(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` synchronous copies that reset in the same step as an episode ends (SAME_STEP)."""
    try:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    except Exception as error:
        raise environment_error(env_id, error) from None


def environment_error(env_id: str, error: Exception) -> TrajdiffError:
    """One line for a failed ``gym.make``: an unknown id, or MuJoCo failing to load an OpenGL backend."""
    if isinstance(error, gym.error.Error):
        return TrajdiffError(f"cannot make environment {env_id!r}: {error}")
    backend = os.environ.get("MUJOCO_GL")
    hint = f"; MUJOCO_GL={backend} names an OpenGL backend that did not load (unset it, or install it)" \
        if backend else ""
    return TrajdiffError(f"cannot make environment {env_id!r} ({type(error).__name__}: {error}){hint}")
