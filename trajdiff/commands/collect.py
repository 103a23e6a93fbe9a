"""``trajdiff collect``: behaviour policies (stable-baselines3 SAC) and D4RL-protocol datasets from them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from trajdiff.collect.behavior import Trainer, checkpoint_path, load_replay, sac_class, save_replay
from trajdiff.collect.datasets import (
    KINDS,
    BehaviorRun,
    Built,
    Kind,
    build_dataset,
    first_episodes,
    mix_datasets,
    suite_file_name,
    write_dataset,
)
from trajdiff.data.formats import write_d4rl_hdf5, write_minari
from trajdiff.data.load import load_dataset
from trajdiff.data.registry import environment_family
from trajdiff.envs import make_environment
from trajdiff.errors import TrajdiffError, require
from trajdiff.files import atomic_write_json
from trajdiff.provenance import provenance
from trajdiff.run_folder import check_creatable
from trajdiff.runlog import progress_bar


@dataclass(frozen=True)
class TrainBehaviorConfig:
    """Train a SAC behaviour policy (stable-baselines3 defaults) and save checkpoints + replay."""

    out: Path
    """Run folder to create (checkpoints, log.json, replay.npz, run.json)."""
    env: str = "Hopper-v5"
    """Gymnasium environment id."""
    steps: int = 100_000
    """Environment steps of SAC training."""
    checkpoint_every: int = 10_000
    """Save and evaluate a checkpoint every this many steps."""
    eval_episodes: int = 5
    """Deterministic evaluation episodes per checkpoint."""
    learning_starts: int = 10_000
    """Random-action steps before SAC starts learning (the SB3 default)."""
    seed: int = 0
    """Seed of SAC and its environments."""
    trainer: Trainer = "sb3"
    """sb3 (stable-baselines3, PyTorch) or sbx (its JAX twin, the sbx extra): the same SAC."""

    def __post_init__(self) -> None:
        for name in ("steps", "checkpoint_every", "eval_episodes"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        require(self.learning_starts >= 0, "--learning-starts must be at least 0")
        require(self.steps >= self.checkpoint_every, "--steps must be at least --checkpoint-every (no checkpoint "
                                                     "otherwise)")


def _behavior_run_record(config: TrainBehaviorConfig, earlier: dict, done_steps: int) -> dict[str, object]:
    """run.json: what a continuation must match, and every start of the run that reached a checkpoint, this one
    included: the step it began at, the code commit, CPU, command (every option spelled out) and libraries (for
    sbx, the JAX libraries too). A run continued on another machine is not the run an unbroken one makes."""
    start = {"at_step": done_steps, **provenance(), "command": behavior_command(config)}
    if config.trainer == "sbx":
        from importlib.metadata import version

        start["versions"] |= {name: version(name) for name in ("sbx-rl", "jax", "jaxlib", "flax", "optax")}
    earlier_starts = [entry for entry in earlier.get("starts", []) if entry["at_step"] < done_steps]
    return {"env": config.env, "trainer": config.trainer, "seed": config.seed, "steps": config.steps,
            "learning_starts": config.learning_starts, "starts": [*earlier_starts, start]}


def behavior_command(config: TrainBehaviorConfig) -> str:
    """The command that makes this run (or continues it to ``steps``), every option spelled out."""
    return (f"trajdiff collect train-behavior --out {config.out} --env {config.env} --steps {config.steps} "
            f"--checkpoint-every {config.checkpoint_every} --eval-episodes {config.eval_episodes} "
            f"--learning-starts {config.learning_starts} --seed {config.seed} --trainer {config.trainer}")


def _check_continuation(config: TrainBehaviorConfig, record_path: Path) -> dict:
    """The run's earlier record ({} for a new run); a run continues only with the environment, trainer and seed it
    started with."""
    if not record_path.is_file():
        return {}
    earlier = json.loads(record_path.read_text())
    for key in ("env", "trainer", "seed", "learning_starts"):
        earlier_value = earlier.get(key, "sb3" if key == "trainer" else None)
        if earlier_value is not None and earlier_value != getattr(config, key):
            raise TrajdiffError(f"{config.out} is a run with {key.replace('_', '-')} {earlier_value}, not "
                                f"{getattr(config, key)}; continue it with the same value or start a new --out")
    return earlier


def train_behavior(config: TrainBehaviorConfig) -> None:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.monitor import Monitor

    check_creatable(config.out)
    sac = sac_class(config.trainer)
    record_path = config.out / "run.json"
    earlier = _check_continuation(config, record_path)
    eval_env = Monitor(make_environment(config.env))  # a bad environment id stops here, before the folder
    config.out.mkdir(parents=True, exist_ok=True)
    log_path = config.out / "log.json"
    log: list[dict[str, float]] = json.loads(log_path.read_text()) if log_path.is_file() else []
    log = [entry for entry in log if checkpoint_path(config.out, int(entry["step"])).is_file()]
    done_steps = int(log[-1]["step"]) if log else 0
    if done_steps >= config.steps:
        raise TrajdiffError(f"{config.out} already holds {done_steps} steps; ask for more with --steps")
    atomic_write_json(record_path, _behavior_run_record(config, earlier, done_steps))
    start = time.time() - (log[-1]["wall_s"] if log else 0.0)

    class CheckpointCallback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = progress_bar(total=config.steps, initial=done_steps, desc=f"SAC {config.env}", unit="step")

        def _on_step(self) -> bool:
            self.bar.update(1)
            return True

        def _on_rollout_end(self) -> None:
            """A checkpoint, where SB3 has stored the step's transition (after _on_step) and not yet trained on
            it: the replay holds every step the policy has taken. The log is written last, so a step it lists
            has its checkpoint and replay saved."""
            if self.num_timesteps % config.checkpoint_every:
                return
            step = self.num_timesteps
            self.model.save(checkpoint_path(config.out, step))
            returns, _ = evaluate_policy(
                self.model, eval_env, n_eval_episodes=config.eval_episodes,
                deterministic=True, return_episode_rewards=True,
            )
            save_replay(self.model.replay_buffer, config.out / "replay.npz")
            log.append({"step": step, "ret_mean": float(np.mean(returns)),
                        "ret_std": float(np.std(returns)), "wall_s": time.time() - start})
            atomic_write_json(log_path, log)
            self.bar.set_postfix(eval_return=f"{log[-1]['ret_mean']:.0f}", refresh=False)

    if done_steps:  # continue a run that was stopped, from its last checkpoint and replay
        model = sac.load(checkpoint_path(config.out, done_steps), env=make_environment(config.env), device="cpu",
                         custom_objects={"buffer_size": config.steps})
        load_replay(model.replay_buffer, config.out / "replay.npz", done_steps)
    else:
        model = sac("MlpPolicy", make_environment(config.env), buffer_size=config.steps,
                    learning_starts=config.learning_starts, seed=config.seed, verbose=0,
                    **({"device": "cpu"} if config.trainer == "sb3" else {}))
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default makes an empty /tmp/SB3-<date> folder
    eval_env.reset(seed=config.seed + 10_000 + done_steps)
    callback = CheckpointCallback()
    model.learn(total_timesteps=config.steps - done_steps, callback=callback, reset_num_timesteps=not done_steps)
    callback.bar.close()
    if config.steps % config.checkpoint_every:  # steps past the last checkpoint, whose replay holds the rest
        save_replay(model.replay_buffer, config.out / "replay.npz")
    print(json.dumps(log[-1]))


@dataclass(frozen=True, kw_only=True)
class CollectSource:
    """What both collect commands read: the behaviour run, and how much to roll out with which seed."""

    from_: Annotated[Path, tyro.conf.arg(name="from")]
    """Behaviour run folder (log.json, sac_<step>.zip, replay.npz)."""
    size: int = 200_000
    """Transitions per rollout dataset (at least; episodes are kept whole)."""
    seed: int = 0
    """Seed of the environments and of the policy's action noise."""
    env: str | None = None
    """Environment id, when the run folder does not record it."""


@dataclass(frozen=True, kw_only=True)
class CollectDatasetConfig(CollectSource):
    """Build one D4RL-protocol dataset from a behaviour run folder."""

    kind: Kind
    """random, medium, medium-replay, expert or medium-expert."""
    out: Path
    """hdf5 file to write (D4RL layout)."""
    infos: bool = True
    """Also store infos/qpos and infos/qvel (float64; about half the file)."""
    minari_id: str | None = None
    """Also write the dataset as a local Minari dataset with this id (e.g. trajdiff/hopper/medium-v0)."""
    policy_step: int | None = None
    """The checkpoint (its step) that a medium, expert or medium-replay dataset comes from, in place of
    the rule's choice; a behaviour run trained only that far then makes the same dataset."""


@dataclass(frozen=True, kw_only=True)
class CollectSuiteConfig(CollectSource):
    """Build all five D4RL-protocol datasets of a behaviour run into OUT/<env>-<kind>.hdf5."""

    out: Path = Path("datasets")
    """Folder for the five files."""


def collect_dataset(config: CollectDatasetConfig) -> None:
    run = BehaviorRun.open(config.from_, config.env)
    built = build_dataset(run, config.kind, config.size, config.seed, policy_step=config.policy_step)
    write_dataset(config.out, built, config.infos)
    dataset = built[0]
    if config.minari_id is not None:
        write_minari(dataset, config.minari_id, run.env_id)
        print(f"also written as Minari dataset {config.minari_id}")


@dataclass(frozen=True)
class CollectMixConfig:
    """Mix whole episodes of several datasets into one, labelling each episode with its source."""

    sources: Annotated[tuple[str, ...], tyro.conf.Positional]
    """Datasets to mix (hdf5 files, D4RL names, Minari ids or 'default'), in label order 0, 1, ..."""
    names: tuple[str, ...]
    """A name per source (e.g. random medium): what episode_source k means."""
    out: Path
    """hdf5 file to write (D4RL layout)."""
    sizes: tuple[int, ...] = ()
    """Transitions to take from each source (its first whole episodes; default all)."""

    def __post_init__(self) -> None:
        require(len(self.sources) >= 2, "mix at least two datasets")
        require(len(self.names) == len(self.sources), "--names needs one name per source")
        require(not self.sizes or len(self.sizes) == len(self.sources), "--sizes needs one size per source")
        require(all(size >= 1 for size in self.sizes), "--sizes must be at least 1")
        require(all("," not in name for name in self.names), "--names cannot contain commas")


def collect_mix(config: CollectMixConfig) -> None:
    if any(Path(source).expanduser().resolve() == config.out.expanduser().resolve() for source in config.sources):
        raise TrajdiffError(f"--out {config.out} is one of the datasets to mix; write the mix to a new file")
    parts = [load_dataset(source) for source in config.sources]
    envs = {part.env_id for part in parts}
    if len(envs) > 1:
        raise TrajdiffError(f"the datasets come from different environments ({', '.join(map(str, envs))})")
    if len({part.observation_dim for part in parts}) > 1 or len({part.action_dim for part in parts}) > 1:
        raise TrajdiffError("the datasets have different observation or action sizes")
    if config.sizes:
        parts = [first_episodes(part, size) for part, size in zip(parts, config.sizes)]
    dataset = mix_datasets(parts, list(config.names), config.out.stem)
    write_d4rl_hdf5(config.out, dataset)
    counts = ", ".join(f"{name} {part.num_episodes} episodes ({part.num_transitions:,} transitions)"
                       for name, part in zip(config.names, parts))
    print(f"{config.out}: {counts}")


def collect_suite(config: CollectSuiteConfig) -> None:
    run = BehaviorRun.open(config.from_, config.env)
    family = environment_family(run.env_id) or run.env_id.lower()
    built: dict[str, Built] = {}
    for kind in KINDS:
        built[kind] = build_dataset(run, kind, config.size, config.seed, built)
        write_dataset(config.out / suite_file_name(family, kind), built[kind])


