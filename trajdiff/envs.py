"""Making Gymnasium environments, for evaluation and for collection alike, with one-line errors."""

from __future__ import annotations

import os
from typing import Literal

import gymnasium as gym
import numpy as np

from trajdiff.data.registry import environment_family
from trajdiff.errors import TrajdiffError

Observe = Literal["all", "positions", "velocities"]

POSITION_ENTRIES = {"hopper": 5, "walker2d": 8, "halfcheetah": 8}
"""Gymnasium MuJoCo locomotion observations (-v4 and -v5, as D4RL's) are the joint positions without the
x position (len(qpos) - 1 entries), then the velocities: how many positions lead, per family."""


def observed_columns(env_id: str, observe: Observe) -> slice:
    """The observation entries ``observe`` keeps: all, the leading positions, or the trailing velocities."""
    if observe == "all":
        return slice(None)
    family = environment_family(env_id)
    if family not in POSITION_ENTRIES:
        raise TrajdiffError(f"--observe {observe} needs a known observation layout, and {env_id}'s is not known "
                            f"(known: {', '.join(POSITION_ENTRIES)})")
    positions = POSITION_ENTRIES[family]
    return slice(None, positions) if observe == "positions" else slice(positions, None)


def partially_observed(env: gym.Env, env_id: str, observe: Observe) -> gym.Env:
    """``env`` showing only the observation entries ``observe`` keeps (the same cut as the dataset's)."""
    if observe == "all":
        return env
    columns = observed_columns(env_id, observe)
    space = env.observation_space
    return gym.wrappers.TransformObservation(
        env, lambda observation: observation[columns],
        gym.spaces.Box(space.low[columns], space.high[columns], dtype=np.float64 if space.dtype is None
                       else space.dtype))


def make_environment(env_id: str, observe: Observe = "all", **kwargs: object) -> gym.Env:
    """``gym.make`` with a one-line error for unknown ids, seeing what ``observe`` keeps."""
    try:
        env = gym.make(env_id, **kwargs)
    except Exception as error:
        raise environment_error(env_id, error) from None
    return partially_observed(env, env_id, observe)


def make_vector_environment(env_id: str, num_envs: int, observe: Observe = "all") -> gym.vector.VectorEnv:
    """``num_envs`` synchronous copies that reset in the same step as an episode ends (SAME_STEP)."""
    observed_columns(env_id, observe)  # an unknown layout fails here, in one line
    try:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                            wrappers=[lambda env: partially_observed(env, env_id, observe)])
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
