"""Batched evaluation rollouts in vectorised Gymnasium environments, with per-env histories."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from trajdiff.data.registry import environment_family, normalized_score
from trajdiff.envs import Observe, make_environment, make_vector_environment
from trajdiff.errors import TrajdiffError
from trajdiff.files import topmost_missing
from trajdiff.measures import TAIL_WEIGHT, EpisodeMeasures
from trajdiff.runlog import progress_bar
from trajdiff.streams import MemberRandom, stream_seed


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
    action_chunk: int
    device: torch.device

    def act(self, history: torch.Tensor, mask: torch.Tensor, random: MemberRandom,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """history (K, E, H, Do), mask (K, E, H) -> chunks of h = action_chunk actions (K, E, h, Da), and the
        critic's value of each (K, E) or None for a policy without a critic."""
        ...


class OpenLoopChunks:
    """Each of N environments' chosen chunk of h actions, played open-loop one action per step. A new chunk is
    chosen when an environment has played all of its chunk, or starts an episode; with h = 1, at every step.

    Shapes: chunks (N, h, Da), values (N,) or None.
    """

    def __init__(self, environments: int, chunk: int) -> None:
        self.chunk = chunk
        self.played = np.full(environments, chunk)  # actions of its chunk each environment has played
        self.chunks: np.ndarray | None = None
        self.values: np.ndarray | None = None

    @property
    def choice_due(self) -> bool:
        return bool((self.played >= self.chunk).any())

    def choose(self, chunks: np.ndarray, values: np.ndarray | None) -> None:
        """Take the new chunks (and their values) of the environments whose chunk is played out."""
        due = self.played >= self.chunk
        if self.chunks is None:
            self.chunks, self.values = chunks.copy(), None if values is None else values.copy()
        self.chunks[due] = chunks[due]
        if values is not None:
            self.values[due] = values[due]
        self.played[due] = 0

    def next(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every environment's next action (N, Da), and the value of its chunk where the chunk starts (NaN on the
        steps inside it: the critic values a chunk from its first state), or None without values."""
        actions = self.chunks[np.arange(len(self.played)), self.played]
        values = None if self.values is None else np.where(self.played == 0, self.values, np.nan)
        self.played += 1
        return actions, values

    def restart(self, environments: np.ndarray) -> None:
        """A new episode in the environments where ``environments`` (N,) bool is True: a new chunk is due there."""
        self.played[environments] = self.chunk


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


@dataclass(frozen=True)
class EvaluationPlan:
    """What one evaluation of every member runs and measures (see :func:`evaluate`)."""

    episodes: int
    """Episodes per member."""
    seeds: Sequence[int]
    """One per member: its evaluation streams come from it."""
    evaluation_round: int = 0
    """Round 0 is the evaluations during training (the same starts at each); ``trajdiff eval --seed R`` is round R."""
    deterministic: bool = False
    """Pick the argmax-Q candidate instead of a softmax draw."""
    observe: Observe = "all"
    """What the policy sees of each observation."""
    discounts: Sequence[float] | None = None
    """Each member's training discount: given, the critic's values are compared with the discounted returns."""
    tail_weight: float = TAIL_WEIGHT
    """The weight of a truncated episode's unseen tail in those returns (trajdiff.measures)."""
    max_envs: int = MAX_ENVIRONMENTS
    """Environments per member stepping at once."""
    progress: bool = False
    """Show a bar counting the finished episodes."""


class EpisodeLedger:
    """The bookkeeping of one evaluation: the running episode's (action, value, reward) trace of each of the K x E
    environments (member-major), which episode each runs, and per member the finished episodes' returns, lengths
    and measures. Episodes are numbered per member in the order they start; those past ``episodes`` are dropped,
    so the results do not depend on which environment finishes first."""

    def __init__(self, members: int, per_member: int, plan: EvaluationPlan) -> None:
        self.episodes, self.discounted = plan.episodes, plan.discounts is not None
        self.member_of = np.arange(members * per_member) // per_member
        self.running = np.arange(members * per_member) % per_member
        self.next_episode = np.full(members, per_member)
        self.returns = np.full((members, plan.episodes), np.nan)
        self.lengths = np.zeros((members, plan.episodes), dtype=np.int64)
        self.measures = [EpisodeMeasures(discount, plan.tail_weight)
                         for discount in (plan.discounts or [1.0] * members)]
        self.traces: list[list[tuple[np.ndarray, float | None, float]]] = [[] for _ in range(members * per_member)]

    @property
    def complete(self) -> bool:
        return not np.isnan(self.returns).any()

    def step(self, actions: np.ndarray, values: np.ndarray | None, rewards: np.ndarray) -> None:
        """One step of every environment: actions (N, Da), the critic's values (N,) or None when there are none to
        judge (no critic, or no discounts), rewards (N,)."""
        for env_index, trace in enumerate(self.traces):
            trace.append((actions[env_index], None if values is None else values[env_index], rewards[env_index]))

    def end(self, env_index: int, terminated: bool) -> bool:
        """The episode of ``env_index`` ended: record it if it counts (returned), and number the next one."""
        member, episode = self.member_of[env_index], self.running[env_index]
        counted = episode < self.episodes
        if counted:
            actions, values, rewards = (np.array(part) for part in zip(*self.traces[env_index]))
            self.returns[member, episode] = np.cumsum(rewards)[-1]  # summed in step order
            self.lengths[member, episode] = len(rewards)
            judged = values.dtype != object  # an array of Nones when there were no values to judge
            self.measures[member].add(actions, rewards, values if judged else None, terminated)
        self.traces[env_index] = []
        self.running[env_index] = self.next_episode[member]
        self.next_episode[member] += 1
        return counted

    def results(self, env_id: str) -> list[EvaluationResult]:
        return [EvaluationResult(self.returns[k], self.lengths[k], env_id, self.measures[k].summary())
                for k in range(len(self.measures))]


def evaluate(agent: Policy, env_id: str, plan: EvaluationPlan) -> list[EvaluationResult]:
    """Run ``plan.episodes`` episodes for each of the agent's K members; one result each.

    Every member gets up to ``plan.max_envs`` environments whose starts and action noise come from its own seed
    (:func:`evaluation_streams`): members of one seed face the same starts, and a member's returns do not
    depend on the seeds of the others. All K x E environments step as one vectorised batch.
    Environments reset themselves in the same step as they end (Gymnasium's SAME_STEP autoreset),
    and each environment's history is reset to the new episode's first observation right then.
    Evaluation never disturbs training randomness, and the same checkpoint gives the same returns.
    A policy of action chunks plays each chosen chunk open-loop (:class:`OpenLoopChunks`) while every
    environment's history advances at each step.
    Every result also carries the measures of trajdiff.measures: the action change, and with ``plan.discounts``
    the accuracy of the critic's values against the discounted returns obtained.
    """
    if len(plan.seeds) != agent.members:
        raise ValueError(f"{len(plan.seeds)} evaluation seeds for {agent.members} members")
    if plan.discounts is not None and len(plan.discounts) != agent.members:
        raise ValueError(f"{len(plan.discounts)} discounts for {agent.members} members")
    members, per_member, device = agent.members, min(plan.episodes, plan.max_envs), agent.device
    num_envs = members * per_member
    envs = make_vector_environment(env_id, num_envs, plan.observe)
    random, starts = evaluation_streams(plan.seeds, plan.evaluation_round, per_member, device)
    observations, _ = envs.reset(seed=starts)
    buffer = HistoryBuffer(num_envs, agent.history_len, observations.shape[1], device)
    buffer.reset(np.ones(num_envs, bool), torch.as_tensor(observations, dtype=torch.float32, device=device))
    ledger = EpisodeLedger(members, per_member, plan)
    playing = OpenLoopChunks(num_envs, agent.action_chunk)
    bar = progress_bar(total=members * plan.episodes, desc=f"evaluate {env_id}", unit="episode",
                       disable=not plan.progress)
    while not ledger.complete:
        if playing.choice_due:
            chosen, values = agent.act(buffer.history.view(members, per_member, *buffer.history.shape[1:]),
                                       buffer.mask.view(members, per_member, -1), random, plan.deterministic)
            judged = values is not None and ledger.discounted  # the critic's values to compare with the returns
            playing.choose(chosen.reshape(num_envs, agent.action_chunk, -1).cpu().numpy(),
                           values.reshape(num_envs).cpu().numpy() if judged else None)
        actions, values = playing.next()
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        ledger.step(actions, values, rewards)
        done = terminated | truncated
        for env_index in np.flatnonzero(done):
            bar.update(int(ledger.end(env_index, bool(terminated[env_index]))))
        playing.restart(done)
        observations_tensor = torch.as_tensor(observations, dtype=torch.float32, device=device)
        buffer.push(observations_tensor)
        buffer.reset(done, observations_tensor)  # SAME_STEP: these are new episodes' first observations
    envs.close()
    bar.close()
    return ledger.results(env_id)


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
    put_back = claim_output(path)
    env = make_environment(env_id, observe, render_mode="rgb_array")
    random, starts = evaluation_streams(seeds, evaluation_round, 1, agent.device)
    try:
        observation, frame = first_frame(env, starts[0])
        writer = video_writer(imageio, path, env.metadata.get("render_fps", 30))
    except TrajdiffError:
        env.close()
        put_back()
        raise
    device = agent.device
    buffer = HistoryBuffer(1, agent.history_len, observation.shape[0], device)
    buffer.reset(np.ones(1, bool), torch.as_tensor(observation[None], dtype=torch.float32, device=device))
    playing = OpenLoopChunks(1, agent.action_chunk)
    try:
        with writer:
            writer.append_data(frame)
            done = False
            while not done:
                if playing.choice_due:  # every member acts; the first is filmed
                    history = buffer.history.expand(agent.members, -1, -1, -1)
                    chunks = agent.act(history, buffer.mask.expand(agent.members, -1, -1), random)[0]
                    playing.choose(chunks[0].cpu().numpy(), None)
                action = playing.next()[0][0]
                observation, _, terminated, truncated, _ = env.step(action)
                writer.append_data(env.render())
                buffer.push(torch.as_tensor(observation[None], dtype=torch.float32, device=device))
                done = terminated or truncated
    except OSError as error:  # a read-only place or a full disk: no partial video stays
        path.unlink(missing_ok=True)
        raise TrajdiffError(f"cannot write the video {path} ({error.strerror or error})") from None
    finally:
        env.close()


def claim_output(path: Path) -> Callable[[], None]:
    """Make sure ``path`` can be written (its folders created, the file opened): a one-line error if not. Returns
    what puts the place back as it was (for a failure before anything was written)."""
    created = topmost_missing(path.parent)
    existed = path.exists()

    def put_back() -> None:
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
    return put_back


def first_frame(env: gym.Env, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first observation and frame of an episode from ``seed``, or a one-line error saying which OpenGL backend
    to set."""
    try:
        observation, _ = env.reset(seed=seed)
        return observation, env.render()
    except Exception as error:  # MuJoCo raises various errors when no GL backend loads
        raise TrajdiffError(f"offscreen rendering failed ({type(error).__name__}: {error}); set MUJOCO_GL=egl "
                            "(GPU, or Mesa's libegl-mesa0 on a CPU) or MUJOCO_GL=osmesa with libosmesa6") from None


def video_writer(imageio: Any, path: Path, fps: int) -> Any:
    """imageio's writer for ``path``, or a one-line error saying what is missing."""
    try:
        return imageio.get_writer(path, fps=fps)
    except OSError as error:
        raise TrajdiffError(f"cannot write the video {path} ({error.strerror or error})") from None
    except (ValueError, ImportError):
        raise TrajdiffError(f"no imageio backend writes {path.suffix or 'extension-less'} files here: "
                            "pip install 'trajdiff[video]' (imageio-ffmpeg, for mp4) or ask for a .gif") from None
