"""``trajdiff train``: the training loop. It owns time: progress, evaluation cadence, logs, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_global_rng, save_checkpoint
from trajdiff.data import EpisodeDataset, TrajectorySampler, default_environment, load_dataset
from trajdiff.errors import TrajdiffError
from trajdiff.evaluate import evaluate, make_environment
from trajdiff.expertise import Evidence, expertise_weights, fit_expertise, plot_expertise
from trajdiff.logging import RunLogger
from trajdiff.utils import atomic_write_json, library_versions, resolve_device, seed_everything

# Fields that may differ between a run and its resumption; any other change is an incompatible config.
RESUMABLE_FIELDS = {"updates", "resume", "device", "eval_every", "eval_episodes", "checkpoint_every"}


@dataclass(frozen=True)
class TrainConfig:
    """Train a trajectory-aware Diffusion-QL agent on an offline dataset, evaluating as it goes."""

    dataset: str = "default"
    """hdf5 file, D4RL name, Minari id, or 'default' (the embedded hopper dataset)."""
    env: str | None = None
    """Evaluation environment id; inferred from the dataset's metadata or name when omitted."""
    preset: str | None = None
    """Diffusion-QL's published hyperparameters for a D4RL dataset name (e.g. hopper-medium-v2)."""
    out: Path = Path("runs/train")
    """Run folder: config.json, progress.csv, tensorboard/, checkpoint.pt."""
    resume: Path | None = None
    """Continue the run in this folder (up to --updates total updates)."""
    updates: int = 100_000
    """Total gradient updates."""
    batch_size: int = 256
    """Windows per update."""
    history_len: int = 1
    """Observations in the policy's history window (1: Diffusion-QL's Markov policy)."""
    n_step: int = 1
    """Steps of real reward in the critic's target (1: Diffusion-QL's one-step TD)."""
    eval_every: int = 10_000
    """Evaluate every this many updates (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation, run in parallel vectorised environments."""
    checkpoint_every: int = 10_000
    """Write the checkpoint every this many updates (and at the end)."""
    seed: int = 0
    """Seed of networks, sampling and diffusion noise; evaluation uses seed + 10000 onwards."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""
    expertise_weighting: bool = False
    """Weight the BC loss by each window's p(expert | episode) (see trajdiff.expertise)."""
    expertise_floor: float = 0.1
    """Weight of a surely non-expert window relative to a surely expert one."""
    expertise_components: int = 3
    """Most mixture components the expertise model may select (by BIC)."""
    expertise_evidence: Evidence = "early-reward"
    """Per-episode evidence the expertise model fits: mean reward over the first steps, or the return."""
    expertise_early_steps: int = 50
    """Steps from each episode's start that the early-reward evidence averages over."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """Algorithm hyperparameters."""


def column_name(metric: str) -> str:
    """progress.csv column of an agent metric: ``loss/critic`` -> ``critic_loss``, ``q/mean`` -> ``q_mean``."""
    group, name = metric.split("/")
    return f"{name}_loss" if group == "loss" else f"{group}_{name}"


def default_config(argv: list[str]) -> TrainConfig:
    """The defaults the command line starts from: a resumed run's saved config, or a preset's values.

    Explicit flags then override these defaults (tyro parses on top of them).
    """
    def value_of(flag: str) -> str | None:
        for index, word in enumerate(argv):
            if word == flag and index + 1 < len(argv):
                return argv[index + 1]
            if word.startswith(flag + "="):
                return word.split("=", 1)[1]
        return None

    resume = value_of("--resume")
    if resume is not None:
        return dataclasses.replace(config_from_dict(load_checkpoint(Path(resume))["config"]), resume=Path(resume))
    preset = value_of("--preset")
    if preset is None:
        return TrainConfig()
    from trajdiff.presets import preset_overrides

    overrides = preset_overrides(preset)
    agent_fields = {f.name for f in dataclasses.fields(AgentConfig)}
    agent = dataclasses.replace(AgentConfig(), **{k: v for k, v in overrides.items() if k in agent_fields})
    return dataclasses.replace(TrainConfig(), agent=agent, preset=preset,
                               **{k: v for k, v in overrides.items() if k not in agent_fields})


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from its JSON form (config.json or a checkpoint)."""
    values = dict(values)
    values["agent"] = AgentConfig(**values.get("agent", {}))
    for key in ("out", "resume"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in values.items() if key in names})


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def check_resumable(saved: TrainConfig, requested: TrainConfig) -> None:
    """Raise when ``requested`` changes anything but the fields a resumption may change."""
    old, new = config_to_dict(saved), config_to_dict(requested)
    changed = sorted(key for key in old if key not in RESUMABLE_FIELDS and old[key] != new.get(key))
    if changed:
        raise TrajdiffError(f"cannot resume {requested.resume}: incompatible config ({', '.join(changed)} "
                            "differ from the saved run)")


def environment_for(dataset: EpisodeDataset, env: str | None) -> str:
    env_id = env or dataset.env_id or default_environment(dataset.name)
    if env_id is None:
        raise TrajdiffError(f"cannot infer the evaluation environment of {dataset.name}; pass --env (e.g. Hopper-v5)")
    return env_id


def build_agent(config: TrainConfig, env_id: str, device: torch.device,
                dataset: EpisodeDataset | None = None) -> DiffusionQLAgent:
    """The agent for ``env_id``'s spaces; given a dataset, first check that the data fits them."""
    probe = make_environment(env_id)
    observation_dim, action_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    max_action = float(probe.action_space.high[0])
    probe.close()
    if dataset is not None:
        dataset.check_environment(observation_dim, action_dim, env_id)
    return DiffusionQLAgent(observation_dim, action_dim, max_action, config.history_len, config.agent,
                            config.updates, device, config.seed)


def train(config: TrainConfig) -> Path:
    """Run (or resume) training; returns the run folder."""
    checkpoint = None
    if config.resume is not None:
        checkpoint = load_checkpoint(config.resume)
        check_resumable(config_from_dict(checkpoint["config"]), config)
        config = dataclasses.replace(config, out=config.resume)
        if checkpoint["step"] >= config.updates:
            raise TrajdiffError(
                f"{config.resume} already has {checkpoint['step']} updates; ask for more with --updates"
            )
    elif (config.out / CHECKPOINT_NAME).exists():
        raise TrajdiffError(f"{config.out} already holds a run; continue it with --resume {config.out} "
                            "or choose another --out")
    for name in ("updates", "batch_size", "history_len", "n_step", "eval_episodes", "checkpoint_every",
                 "expertise_early_steps"):
        if getattr(config, name) < 1:
            raise TrajdiffError(f"--{name.replace('_', '-')} must be at least 1")
    if config.expertise_weighting and not 0.0 < config.expertise_floor <= 1.0:
        raise TrajdiffError("--expertise-floor must be in (0, 1]")
    device = resolve_device(config.device)
    seed_everything(config.seed)
    dataset = load_dataset(config.dataset)
    env_id = environment_for(dataset, config.env)
    agent = build_agent(config, env_id, device, dataset)
    sampler = TrajectorySampler(
        dataset, config.history_len, config.n_step, config.agent.discount, device, config.seed
    )
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    episode_expertise = None
    if config.expertise_weighting:
        model = fit_expertise(dataset, config.expertise_components, config.seed, config.expertise_evidence,
                              config.expertise_early_steps)
        atomic_write_json(out / "expertise.json", model.summary())
        plot_expertise(model, out / "expertise.png", dataset.episode_metadata.get("episode_source"))
        episode_expertise = torch.as_tensor(model.episode_expertise, dtype=torch.float32, device=device)
    metric_sums: dict[str, torch.Tensor] = {}
    metric_count = 0
    if checkpoint is not None:
        agent.load_state_dict(checkpoint["agent"])
        sampler.generator.set_state(checkpoint["sampler_generator"])  # generator states are CPU tensors
        restore_global_rng(checkpoint)
        metric_sums = {key: value.to(device) for key, value in checkpoint["metric_sums"].items()}
        metric_count = checkpoint["metric_count"]
    atomic_write_json(out / "config.json", {**config_to_dict(config), "env_id": env_id,
                                            "dataset_name": dataset.name, "versions": library_versions()})
    logger = RunLogger(out, resume_step=agent.step if checkpoint else None, tensorboard=config.tensorboard)
    row_every = config.eval_every or config.checkpoint_every
    bar = tqdm(total=config.updates, initial=agent.step, desc=f"train {dataset.name}", unit="update",
               dynamic_ncols=True)
    started, started_step = time.time(), agent.step
    earlier_wall_s = checkpoint.get("wall_s", 0.0) if checkpoint is not None else 0.0  # before a resume
    while agent.step < config.updates:
        batch = sampler.sample(config.batch_size)
        weights = None
        if episode_expertise is not None:
            weights = expertise_weights(episode_expertise[batch.episode_index], config.expertise_floor)
        metrics = agent.update(batch, weights)
        if weights is not None:
            metrics.update({"weight/std": weights.std(), "weight/min": weights.min(), "weight/max": weights.max()})
        for key, value in metrics.items():
            metric_sums[key] = metric_sums[key] + value if key in metric_sums else value.clone()
        metric_count += 1
        bar.update(1)
        step = agent.step
        if step % 100 == 0:
            bar.set_postfix({key.split("/")[1]: f"{float(metrics[key]):.3g}"
                             for key in ("loss/critic", "loss/bc", "loss/q")})
        if step % row_every == 0 or step == config.updates:
            row: dict[str, float] = {"step": step}
            row.update({column_name(key): float(value) / metric_count for key, value in metric_sums.items()})
            row["updates_per_s"] = (step - started_step) / (time.time() - started)
            if config.eval_every:
                result = evaluate(agent, env_id, config.history_len, config.eval_episodes, config.seed + 10_000)
                summary = result.summary()
                row.update(return_mean=summary["return_mean"], return_std=summary["return_std"],
                           normalized_score=summary["normalized_score_mean"])
                bar.write(f"step {step}: return {summary['return_mean']:.1f} ± {summary['return_std']:.1f}, "
                          f"normalised {summary['normalized_score_mean']:.1f}")
            row["wall_s"] = earlier_wall_s + time.time() - started  # training and evaluation so far
            logger.write(row)
            metric_sums, metric_count = {}, 0
        if step % config.checkpoint_every == 0 or step == config.updates:
            save_checkpoint(out / CHECKPOINT_NAME, {
                "agent": agent.state_dict(), "step": step, "config": config_to_dict(config), "env_id": env_id,
                "sampler_generator": sampler.generator.get_state(),
                "metric_sums": metric_sums, "metric_count": metric_count,
                "wall_s": earlier_wall_s + time.time() - started,
            })
    bar.close()
    logger.close()
    return out
