"""Batched evaluation rollouts in vectorised Gymnasium environments, with per-env histories."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from trajdiff.data.registry import environment_family, normalized_score
from trajdiff.envs import Observe, make_environment, make_vector_environment
from trajdiff.errors import TrajdiffError
from trajdiff.measures import TAIL_WEIGHT, EpisodeMeasures
from trajdiff.streams import MemberRandom, stream_seed
from trajdiff.utils import progress_bar, topmost_missing


class HistoryBuffer:
    """The last H observations of each of E environments, left-padded exactly like training windows.

    Shapes: history (E, H, Do) float32 (zeros where padded), mask (E, H) bool.
    """

    def __init__(self, num_envs: int, history_len: int, observation_dim: int, device: torch.device) -> None:
        self.history = torch.zeros(num_envs, history_len, observation_dim, device=device)
        self.mask = torch.zeros(num_envs, history_len, dtype=torch.bool, device=device)

    def reset(self, envs: np.ndarray, observations: torch.Tensor) -> None:
        """Start new episodes in the environments where ``envs`` (E,) bool is True."""
        selected = torch.as_tensor(envs, device=self.history.device)
        self.history[selected] = 0.0
        self.mask[selected] = False
        self.history[selected, -1] = observations[selected]
        self.mask[selected, -1] = True

    def push(self, observations: torch.Tensor) -> None:
        """Append one step for every environment. observations (E, Do)."""
        self.history = torch.cat([self.history[:, 1:], observations[:, None]], dim=1)
        self.mask = torch.cat([self.mask[:, 1:], torch.ones_like(self.mask[:, :1])], dim=1)


@dataclass(frozen=True)
class EvaluationResult:
    """One member's evaluation: return and length per episode, and the measures of trajdiff.measures (the
    Q-accuracy ones NaN for a policy without a critic, or when no discount was given)."""

    returns: np.ndarray
    lengths: np.ndarray
    env_id: str
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def normalized_scores(self) -> np.ndarray:
        if environment_family(self.env_id) is None:
            return np.full(len(self.returns), np.nan)
        return np.array([normalized_score(self.env_id, value) for value in self.returns])

    def summary(self) -> dict[str, object]:
        scores = self.normalized_scores
        return {
            "env_id": self.env_id,
            "episodes": len(self.returns),
            "return_mean": float(self.returns.mean()),
            "return_std": float(self.returns.std()),
            "normalized_score_mean": float(scores.mean()),
            "normalized_score_std": float(scores.std()),
            "length_mean": float(self.lengths.mean()),
            "episode_returns": [float(value) for value in self.returns],
            "episode_normalized_scores": [float(value) for value in scores],
            **self.measures,
        }


class Policy(Protocol):
    """What evaluation runs: a trajdiff agent, or a baseline's policy behind the same call (K = 1)."""

    members: int
    history_len: int
    device: torch.device

    def act(self, history: torch.Tensor, mask: torch.Tensor, random: MemberRandom,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """history (K, E, H, Do), mask (K, E, H) -> actions (K, E, Da), and the critic's value of each (K, E)
        or None for a policy without a critic."""
        ...


def evaluation_streams(seeds: Sequence[int], evaluation_round: int, environments: int,
                       device: torch.device) -> tuple[MemberRandom, list[int]]:
    """Member k's evaluation randomness, from its seed ``seeds[k]`` alone: the action noise (its
    evaluation-actions stream) and the reset seeds of its ``environments`` environments (its
    evaluation-starts streams), both at ``evaluation_round``. Returns the generators and the K x E reset
    seeds, member-major."""
    random = MemberRandom(seeds, "evaluation-actions", device, evaluation_round)
    starts = [stream_seed(seed, "evaluation-starts", evaluation_round, index)
              for seed in seeds for index in range(environments)]
    return random, starts


MAX_ENVIRONMENTS = 10
"""Environments per member that step at once in an evaluation (more episodes run one after the other)."""


def evaluate(agent: Policy, env_id: str, episodes: int, seeds: Sequence[int], evaluation_round: int = 0,
             deterministic: bool = False, max_envs: int = MAX_ENVIRONMENTS, observe: Observe = "all",
             progress: bool = False, discounts: Sequence[float] | None = None,
             tail_weight: float = TAIL_WEIGHT) -> list[EvaluationResult]:
    """Run ``episodes`` episodes for each of the agent's K members (seeds (K,), one per member); one result each.

    Every member gets up to ``max_envs`` environments whose starts and action noise come from its own seed
    (:func:`evaluation_streams`): members of one seed face the same starts, and a member's returns do not
    depend on the seeds of the others. Round 0 is the evaluations during training (the same starts at each);
    ``trajdiff eval --seed R`` evaluates round R. All K x E environments step as one vectorised batch.
    Environments reset themselves in the same step as they end (Gymnasium's SAME_STEP autoreset),
    and each environment's history is reset to the new episode's first observation right then.
    Evaluation never disturbs training randomness, and the same checkpoint gives the same returns.
    With ``progress``, a bar counts the finished episodes. Every result also carries the measures of
    trajdiff.measures: the action change, and with ``discounts`` (K,) (each member's training discount) the
    accuracy of the critic's values against the discounted returns obtained (``tail_weight`` there).
    """
    if len(seeds) != agent.members:
        raise ValueError(f"{len(seeds)} evaluation seeds for {agent.members} members")
    if discounts is not None and len(discounts) != agent.members:
        raise ValueError(f"{len(discounts)} discounts for {agent.members} members")
    members, per_member = agent.members, min(episodes, max_envs)
    num_envs = members * per_member
    envs = make_vector_environment(env_id, num_envs, observe)
    device = agent.device
    random, starts = evaluation_streams(seeds, evaluation_round, per_member, device)
    observations, _ = envs.reset(seed=starts)
    buffer = HistoryBuffer(num_envs, agent.history_len, observations.shape[1], device)
    buffer.reset(np.ones(num_envs, bool), torch.as_tensor(observations, dtype=torch.float32, device=device))
    member_of = np.arange(num_envs) // per_member
    started = np.arange(num_envs) % per_member  # episode number each env runs; those past `episodes` are dropped
    next_episode = np.full(members, per_member)
    returns = np.full((members, episodes), np.nan)
    lengths = np.zeros((members, episodes), dtype=np.int64)
    measures = [EpisodeMeasures(discount, tail_weight) for discount in (discounts or [1.0] * members)]
    traces: list[list[tuple[np.ndarray, float, float]]] = [[] for _ in range(num_envs)]  # (action, value, reward)
    bar = progress_bar(total=members * episodes, desc=f"evaluate {env_id}", unit="episode", disable=not progress)
    while np.isnan(returns).any():
        history = buffer.history.view(members, per_member, *buffer.history.shape[1:])
        mask = buffer.mask.view(members, per_member, -1)
        chosen, values = agent.act(history, mask, random, deterministic)
        actions = chosen.reshape(num_envs, -1).cpu().numpy()
        judged = values is not None and discounts is not None  # the critic's values to compare with the returns
        value_of = values.reshape(num_envs).cpu().numpy() if judged else np.full(num_envs, np.nan)
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        for env_index, trace in enumerate(traces):
            trace.append((actions[env_index], value_of[env_index], rewards[env_index]))
        done = terminated | truncated
        for env_index in np.flatnonzero(done):
            member, episode = member_of[env_index], started[env_index]
            if episode < episodes:
                episode_actions, episode_values, episode_rewards = (np.array(part) for part in zip(*traces[env_index]))
                returns[member, episode] = np.cumsum(episode_rewards)[-1]  # summed in step order
                lengths[member, episode] = len(episode_rewards)
                measures[member].add(episode_actions, episode_rewards,
                                     episode_values if judged else None,
                                     bool(terminated[env_index]))
                bar.update(1)
            traces[env_index] = []
            started[env_index] = next_episode[member]
            next_episode[member] += 1
        observations_tensor = torch.as_tensor(observations, dtype=torch.float32, device=device)
        buffer.push(observations_tensor)
        buffer.reset(done, observations_tensor)  # SAME_STEP: these are new episodes' first observations
    envs.close()
    bar.close()
    return [EvaluationResult(returns[member], lengths[member], env_id, measures[member].summary())
            for member in range(members)]


def record_video(agent: Policy, env_id: str, path: Path, seeds: Sequence[int], evaluation_round: int,
                 observe: Observe = "all") -> None:
    """Render one episode of the agent's first member to ``path`` (mp4 or gif) through MuJoCo's offscreen renderer.

    The episode is the first member's first evaluation episode of ``evaluation_round`` (see :func:`evaluate`).

    Needs an OpenGL backend: ``MUJOCO_GL=egl`` (NVIDIA's EGL on a GPU machine, or Mesa's
    software EGL, libegl-mesa0, on a CPU one) or ``MUJOCO_GL=osmesa`` (libosmesa6), and the
    ``video`` extra (imageio; imageio-ffmpeg for mp4). Frames are written as they are rendered.
    """
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise TrajdiffError("videos need imageio: pip install 'trajdiff[video]'") from None
    created = topmost_missing(path.parent)  # removed again if the writer cannot start
    existed = path.exists()

    def put_back() -> None:  # what a failed start made goes again
        if not existed:
            path.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.open("ab").close()  # a read-only place fails here, before the writer, whose cleanup would retry noisily
    except OSError as error:
        put_back()
        raise TrajdiffError(f"cannot write the video {path} ({error.strerror or error})") from None
    env = make_environment(env_id, observe, render_mode="rgb_array")
    random, starts = evaluation_streams(seeds, evaluation_round, 1, agent.device)
    try:
        observation, _ = env.reset(seed=starts[0])
        frame = env.render()
    except Exception as error:  # MuJoCo raises various errors when no GL backend loads
        env.close()
        put_back()
        raise TrajdiffError(f"offscreen rendering failed ({type(error).__name__}: {error}); set MUJOCO_GL=egl "
                            "(GPU, or Mesa's libegl-mesa0 on a CPU) or MUJOCO_GL=osmesa with libosmesa6") from None
    try:
        writer = imageio.get_writer(path, fps=env.metadata.get("render_fps", 30))
    except OSError as error:
        env.close()
        put_back()
        raise TrajdiffError(f"cannot write the video {path} ({error.strerror or error})") from None
    except (ValueError, ImportError):
        env.close()
        put_back()
        raise TrajdiffError(f"no imageio backend writes {path.suffix or 'extension-less'} files here: "
                            "pip install 'trajdiff[video]' (imageio-ffmpeg, for mp4) or ask for a .gif") from None
    device = agent.device
    buffer = HistoryBuffer(1, agent.history_len, observation.shape[0], device)
    buffer.reset(np.ones(1, bool), torch.as_tensor(observation[None], dtype=torch.float32, device=device))
    try:
        with writer:
            writer.append_data(frame)
            done = False
            while not done:
                history = buffer.history.expand(agent.members, -1, -1, -1)  # every member acts; the first is filmed
                action = agent.act(history, buffer.mask.expand(agent.members, -1, -1), random)[0][0, 0].cpu().numpy()
                observation, _, terminated, truncated, _ = env.step(action)
                writer.append_data(env.render())
                buffer.push(torch.as_tensor(observation[None], dtype=torch.float32, device=device))
                done = terminated or truncated
    except OSError as error:  # a read-only place or a full disk: no partial video stays
        path.unlink(missing_ok=True)
        raise TrajdiffError(f"cannot write the video {path} ({error.strerror or error})") from None
    finally:
        env.close()
