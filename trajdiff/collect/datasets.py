"""D4RL-protocol datasets from a behaviour-policy run folder (see :mod:`trajdiff.collect.behavior`).

Kinds, per environment, as D4RL defines them:
- random: uniformly random actions;
- medium: the checkpoint whose evaluated return is closest to one third of the best checkpoint's
  (ties: the earlier one), acting stochastically;
- expert: the checkpoint with the best evaluated return, acting stochastically;
- medium-replay: every transition SAC collected up to the medium checkpoint's step, in order;
- medium-expert: the medium and expert datasets concatenated, each episode labelled
  (``metadata/episode_source``: 0 = medium, 1 = expert).
Episodes are complete: rollouts stop once ``size`` transitions are reached at an episode's end, so
a dataset holds between ``size`` and ``size`` + one episode of rows. The 1000-step time limit
ends an episode as a timeout, never a terminal (D4RL: terminal = done and not timeout).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np

import trajdiff
from trajdiff.collect.behavior import Trainer, checkpoint_path, sac_class
from trajdiff.data.episodes import ARRAY_KEYS, EpisodeDataset
from trajdiff.data.formats import write_d4rl_hdf5
from trajdiff.data.registry import default_environment
from trajdiff.envs import make_vector_environment
from trajdiff.errors import TrajdiffError
from trajdiff.runlog import progress_bar

Kind = Literal["random", "medium", "expert", "medium-replay", "medium-expert"]
KINDS: tuple[Kind, ...] = ("random", "medium", "medium-replay", "expert", "medium-expert")
"""In build order: medium-expert last, from the medium and expert already built."""


@dataclass(frozen=True)
class BehaviorRun:
    """A behaviour run folder: its environment, checkpoint log, starts (run.json) and the two chosen
    checkpoints."""

    directory: Path
    env_id: str
    log: list[dict[str, float]]
    trainer: Trainer = "sb3"
    starts: tuple[dict, ...] = ()

    @classmethod
    def open(cls, directory: Path, env_id: str | None = None) -> BehaviorRun:
        log_path = directory / "log.json"
        if not log_path.is_file():
            raise TrajdiffError(
                f"{directory} is not a behaviour run: no log.json (made by trajdiff collect train-behavior)"
            )
        try:
            log = json.loads(log_path.read_text())
        except json.JSONDecodeError as error:
            raise TrajdiffError(f"{log_path} is not valid JSON ({error})") from None
        log = [entry for entry in log if checkpoint_path(directory, int(entry["step"])).is_file()]
        if not log:
            raise TrajdiffError(f"{directory} holds no checkpoints (sac_<step>.zip) listed in its log.json")
        run_file = directory / "run.json"
        record = json.loads(run_file.read_text()) if run_file.is_file() else {}
        env_id = env_id or record.get("env") or default_environment(directory.name)
        if env_id is None:
            raise TrajdiffError(f"cannot tell the environment of {directory}; pass --env (e.g. Hopper-v5)")
        return cls(directory, env_id, log, record.get("trainer", "sb3"), tuple(record.get("starts", ())))

    @property
    def command(self) -> str:
        """The command of the run's last start, which names its target steps."""
        return self.starts[-1]["command"] if self.starts else "not recorded"

    def provenance(self) -> dict[str, str]:
        """What a dataset file records of the run its policies came from: its command, trainer, starts (the step
        each began at, its CPU and code commit, as JSON) and evaluation curve (step and mean deterministic return
        of every checkpoint, as JSON)."""
        curve = [[int(entry["step"]), round(float(entry["ret_mean"]), 1)] for entry in self.log]
        starts = [{key: start[key] for key in ("at_step", "cpu", "code_commit")} for start in self.starts]
        return {"behavior_command": self.command, "behavior_trainer": self.trainer,
                "behavior_starts": json.dumps(starts), "behavior_curve": json.dumps(curve)}

    def policy(self, step: int):  # noqa: ANN201 - an SB3 or sbx SAC model
        """The SAC checkpoint saved at ``step``, loaded with the trainer that made it."""
        return sac_class(self.trainer).load(checkpoint_path(self.directory, step), device="cpu")

    @property
    def expert(self) -> dict[str, float]:
        return max(self.log, key=lambda entry: entry["ret_mean"])

    @property
    def medium(self) -> dict[str, float]:
        target = self.expert["ret_mean"] / 3
        return min(self.log, key=lambda entry: (abs(entry["ret_mean"] - target), entry["step"]))

    def checkpoint(self, step: int) -> dict[str, float]:
        """The log entry of the checkpoint saved at ``step``."""
        for entry in self.log:
            if int(entry["step"]) == step:
                return entry
        steps = ", ".join(str(int(entry["step"])) for entry in self.log)
        raise TrajdiffError(f"{self.directory} has no checkpoint at step {step} (it has {steps})")


def rollouts(env_id: str, policy, size: int, seed: int, num_envs: int = 8, label: str = "") -> tuple[dict, np.ndarray]:  # noqa: ANN001
    """Run ``policy`` (a batched SB3 model or None for uniform random actions) until ``size`` rows.

    Returns D4RL arrays (with infos qpos/qvel) in episode order, and the per-episode returns.
    """
    envs = make_vector_environment(env_id, num_envs)
    envs.action_space.seed(seed)
    observations, _ = envs.reset(seed=[seed + index for index in range(num_envs)])
    keys = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations", "qpos", "qvel")
    running: list[dict[str, list]] = [{key: [] for key in keys} for _ in range(num_envs)]
    episodes: list[dict[str, np.ndarray]] = []
    total = 0
    bar = progress_bar(total=size, desc=f"collect {label or env_id}", unit="step")
    while total < size:
        if policy is None:
            actions = envs.action_space.sample()
        else:
            actions, _ = policy.predict(observations, deterministic=False)
        states = [(env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()) for env in envs.envs]
        next_observations, rewards, terminated, truncated, infos = envs.step(actions)
        for index in range(num_envs):
            done = terminated[index] or truncated[index]
            episode = running[index]
            episode["observations"].append(observations[index])
            episode["actions"].append(actions[index])
            episode["rewards"].append(rewards[index])
            # D4RL: the time limit makes a timeout even if the step also terminated
            episode["timeouts"].append(bool(truncated[index]))
            episode["terminals"].append(bool(terminated[index] and not truncated[index]))
            episode["next_observations"].append(infos["final_obs"][index] if done else next_observations[index])
            episode["qpos"].append(states[index][0])
            episode["qvel"].append(states[index][1])
            if done and total < size:
                episodes.append({key: np.asarray(values) for key, values in episode.items()})
                total += len(episode["rewards"])
                bar.update(len(episode["rewards"]))
                running[index] = {key: [] for key in keys}
            elif done:
                running[index] = {key: [] for key in keys}
        observations = next_observations
    bar.close()
    envs.close()
    arrays = {key: np.concatenate([episode[key] for episode in episodes]) for key in keys}
    returns = np.array([episode["rewards"].sum() for episode in episodes])
    return arrays, returns


Built = tuple[EpisodeDataset, dict[str, np.ndarray]]


def build_dataset(run: BehaviorRun, kind: Kind, size: int, seed: int, built: dict[str, Built] | None = None,
                  policy_step: int | None = None) -> Built:
    """One dataset of ``kind`` and its infos (qpos, qvel where recorded).

    medium rolls out with ``seed`` and expert with ``seed + 1``, so medium-expert is exactly the
    two concatenated; ``built`` lends medium-expert the ones a suite has already made.
    ``policy_step`` names the checkpoint that a medium, expert or medium-replay dataset comes from,
    in place of the rule's choice: a run trained only as far as that checkpoint makes the same dataset.
    """
    if size < 1:
        raise TrajdiffError("--size must be at least 1")
    if policy_step is not None and kind not in ("medium", "expert", "medium-replay"):
        raise TrajdiffError(f"--policy-step names the checkpoint of a medium, expert or medium-replay "
                            f"dataset, not of {kind}")
    chosen = run.checkpoint(policy_step) if policy_step is not None else None
    metadata: dict[str, object] = {"env_id": run.env_id, "kind": kind, "seed": seed,
                                   "trajdiff_version": trajdiff.__version__,
                                   "gymnasium_version": gym.__version__,
                                   "behavior_run": str(run.directory), **run.provenance()}
    if kind == "medium-expert":
        built = built or {}
        medium, medium_infos = built.get("medium") or build_dataset(run, "medium", size, seed)
        expert, expert_infos = built.get("expert") or build_dataset(run, "expert", size, seed)
        infos = {key: np.concatenate([medium_infos[key], expert_infos[key]]) for key in medium_infos}
        return mix_datasets([medium, expert], ["medium", "expert"], kind, metadata), infos
    if kind == "medium-replay":
        replay_path = run.directory / "replay.npz"
        if not replay_path.is_file():
            raise TrajdiffError(f"{run.directory} has no replay.npz: medium-replay needs the run's transitions")
        replay = np.load(replay_path)
        entry = chosen or run.medium
        steps = int(entry["step"])
        arrays = {key: replay[key][:steps] for key in ("observations", "next_observations", "actions", "rewards")}
        arrays["timeouts"] = replay["timeouts"][:steps]
        arrays["terminals"] = replay["dones"][:steps] & ~arrays["timeouts"]
        metadata.update(policy=f"replay up to step {steps}", policy_return=float(entry["ret_mean"]))
        return _labelled(arrays, kind, metadata), {}
    if kind == "random":
        policy, entry = None, {"step": 0, "ret_mean": float("nan")}
    elif kind in ("medium", "expert"):
        entry = chosen or (run.medium if kind == "medium" else run.expert)
        policy = run.policy(int(entry["step"]))
    else:
        raise TrajdiffError(f"unknown dataset kind {kind!r} ({', '.join(KINDS)})")
    arrays, _ = rollouts(run.env_id, policy, size, seed + (kind == "expert"), label=kind)
    infos = {"qpos": arrays.pop("qpos"), "qvel": arrays.pop("qvel")}
    metadata.update(policy=checkpoint_path(run.directory, int(entry["step"])).name if policy else "uniform random",
                    policy_return=float(entry["ret_mean"]))
    return _labelled(arrays, kind, metadata), infos


def mix_datasets(parts: list[EpisodeDataset], names: list[str], name: str,
                 metadata: dict[str, object] | None = None) -> EpisodeDataset:
    """Whole datasets one after the other, every episode labelled with its part: ``episode_source`` k is
    ``names[k]`` (recorded as ``episode_source_names``), with each part's policy and return in the metadata."""
    arrays = {key: np.concatenate([getattr(part, key) for part in parts]) for key in ARRAY_KEYS}
    source = np.concatenate([np.full(part.num_episodes, k, np.int64) for k, part in enumerate(parts)])
    metadata = {**(metadata or {}), "episode_source_names": ",".join(names),
                "policy": " + ".join(str(part.metadata.get("policy", "?")) for part in parts),
                "policy_return": " + ".join(str(part.metadata.get("policy_return", "?")) for part in parts)}
    if all("env_id" in part.metadata for part in parts):
        metadata.setdefault("env_id", parts[0].metadata["env_id"])
    return _labelled(arrays, name, metadata, {"episode_source": source})


def first_episodes(dataset: EpisodeDataset, size: int) -> EpisodeDataset:
    """The dataset's first whole episodes, at least ``size`` transitions (all of them if it has fewer)."""
    episodes = int(np.searchsorted(dataset.episode_ends, min(size, dataset.num_transitions))) + 1
    end = int(dataset.episode_ends[min(episodes, dataset.num_episodes) - 1])
    arrays = {key: getattr(dataset, key)[:end] for key in ARRAY_KEYS}
    return EpisodeDataset.from_arrays(arrays, name=dataset.name, metadata=dataset.metadata)


def _labelled(arrays: dict[str, np.ndarray], kind: str, metadata: dict[str, object],
              episode_metadata: dict[str, np.ndarray] | None = None) -> EpisodeDataset:
    """The dataset with each episode's undiscounted return recorded, as the shared datasets do."""
    dataset = EpisodeDataset.from_arrays(arrays, name=kind, metadata=metadata, episode_metadata=episode_metadata)
    return dataclasses.replace(dataset, episode_metadata={**dataset.episode_metadata,
                                                          "episode_returns": dataset.episode_returns})


def suite_file_name(family: str, kind: Kind) -> str:
    """File name `collect suite` gives a dataset, and `trajdiff bench` looks for: ``hopper-medium.hdf5``."""
    return f"{family}-{kind}.hdf5"


def write_dataset(out: Path, built: Built, with_infos: bool = True) -> None:
    """Write a built dataset as D4RL-layout hdf5 (with its infos unless ``with_infos`` is off) and say so."""
    dataset, infos = built
    write_d4rl_hdf5(out, dataset, infos=infos if with_infos else None)
    print(f"{out}: {dataset.num_transitions:,} transitions, {dataset.num_episodes} episodes, "
          f"return mean {dataset.episode_returns.mean():.1f} (policy {dataset.metadata['policy']})")
