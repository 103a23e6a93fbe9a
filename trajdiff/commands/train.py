"""``trajdiff train``: the training loop. It owns time: progress, evaluation cadence, logs, checkpoints.

One run trains K members at once (``--seeds``, or the bench's batches of a method and its ablations):
each member writes its own folder (config.json, progress.csv, tensorboard/, checkpoint.pt), exactly
what a single run writes, and a single ``--seed`` run is the case K = 1 in ``--out`` itself.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from tqdm import tqdm

from trajdiff.agent import MEMBER_FIELDS, AgentConfig, DiffusionQLAgent
from trajdiff.agent_state import load_member_states, member_state
from trajdiff.checkpoint import CHECKPOINT_NAME, load_checkpoint, member_folders, restore_global_rng, save_checkpoints
from trajdiff.data import EpisodeDataset, TrajectorySampler, default_environment, load_dataset
from trajdiff.engine import UpdateEngine, graph_support
from trajdiff.envs import Observe, observed_columns
from trajdiff.errors import TrajdiffError, require
from trajdiff.evaluate import evaluate
from trajdiff.expertise import Evidence, episode_weights, fit_expertise
from trajdiff.plots import plot_expertise, plot_progress, source_names
from trajdiff.run_folder import RunFolder, agent_for_environment, check_creatable, saved_agent_config
from trajdiff.runlog import RunLogger
from trajdiff.streams import check_seed, stream_seed
from trajdiff.utils import (
    atomic_write_json,
    generator_state,
    library_versions,
    resolve_device,
    restore_generator,
    seed_everything,
)

# TrainConfig fields in which the members of one batch may differ (with AgentConfig's MEMBER_FIELDS).
MEMBER_TRAIN_FIELDS = {"seed", "out", "resume", "expertise_weighting", "expertise_floor"}


@dataclass(frozen=True)
class Schedule:
    """How long a run goes, how it is watched and where it runs: what a resumption may change."""

    updates: int = 100_000
    """Total gradient updates."""
    eval_every: int = 10_000
    """Evaluate every this many updates (0: never)."""
    eval_episodes: int = 10
    """Episodes per evaluation, run in parallel vectorised environments."""
    checkpoint_every: int = 10_000
    """Write the checkpoint every this many updates (and at the end)."""
    stop_at: int | None = None
    """Checkpoint and stop at this update, short of --updates, which still sets the run (its learning-rate
    decay, its progress bar): --resume later continues it as if it had never stopped."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    cuda_graph: bool = True
    """On CUDA, capture the whole update once as a CUDA graph and replay it (no effect on CPU)."""

    def __post_init__(self) -> None:
        for name in ("updates", "eval_episodes", "checkpoint_every"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        require(self.eval_every >= 0, "--eval-every must be at least 0 (0: never)")
        require(self.stop_at is None or 1 <= self.stop_at <= self.updates, "--stop-at must be in 1..--updates")

    @property
    def end(self) -> int:
        """The update this call of the run stops at."""
        return self.updates if self.stop_at is None else self.stop_at


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
    batch_size: int = 256
    """Windows per update."""
    seed: int = 0
    """Seed of every random stream of the run (weights, windows, diffusion noise, evaluation, expertise), each
    derived from it apart from the others (trajdiff.streams); 0..2^32-1."""
    seeds: tuple[int, ...] = ()
    """Train one member per seed as one batched computation, into OUT/seed-S/ each (instead of --seed)."""
    observe: Observe = "all"
    """What the agent sees of each observation, in the data and in the environment alike: all of it, only the
    joint positions (velocities must be inferred from the recent past) or only the velocities."""
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
    """Algorithm hyperparameters: must match when a run is resumed."""
    schedule: Schedule = field(default_factory=Schedule)
    """Updates, evaluation and checkpoint cadence, device: may change when a run is resumed."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "expertise_components", "expertise_early_steps"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        require(0.0 < self.expertise_floor <= 1.0, "--expertise-floor must be in (0, 1]")
        require(len(set(self.seeds)) == len(self.seeds), "--seeds repeats a seed")
        check_seed(self.seed)
        for seed in self.seeds:
            check_seed(seed, "--seeds")


def column_name(metric: str) -> str:
    """progress.csv column of an agent metric: ``loss/critic`` -> ``critic_loss``, ``q/mean`` -> ``q_mean``."""
    group, name = metric.split("/")
    return f"{name}_loss" if group == "loss" else f"{group}_{name}"


@dataclass(frozen=True)
class StartingPoint:
    """The two flags that choose the defaults the others override."""

    preset: str | None = None
    resume: Path | None = None


def default_config(argv: list[str]) -> TrainConfig:
    """The defaults the command line starts from: a resumed run's saved config, or a preset's values.

    tyro reads --resume and --preset first (every other flag is left for the second pass); explicit
    flags then override these defaults when tyro parses the whole TrainConfig on top of them.
    """
    start, _ = tyro.cli(StartingPoint, args=argv, return_unknown_args=True, add_help=False,
                        config=(tyro.conf.OmitArgPrefixes,))
    if start.resume is not None:
        return resumed_config(start.resume)
    preset = start.preset
    if preset is None:
        return TrainConfig()
    from trajdiff.presets import preset_overrides

    return with_overrides(TrainConfig(preset=preset), preset_overrides(preset))


def with_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``config`` with fields replaced by name, wherever they live: the agent's, the schedule's or its own."""
    parts: dict[str, dict[str, Any]] = {"agent": {}, "schedule": {}, "": {}}
    for key, value in overrides.items():
        part = next((name for name, kind in (("agent", AgentConfig), ("schedule", Schedule))
                     if key in {f.name for f in dataclasses.fields(kind)}), "")
        parts[part][key] = value
    return dataclasses.replace(config, agent=dataclasses.replace(config.agent, **parts["agent"]),
                               schedule=dataclasses.replace(config.schedule, **parts["schedule"]), **parts[""])


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from its JSON form (config.json or a checkpoint)."""
    values = dict(values)
    values["agent"] = saved_agent_config(values)
    values["schedule"] = Schedule(**values["schedule"])
    values["seeds"] = tuple(values["seeds"])
    for key in ("out", "resume"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in values.items() if key in names})


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def flat_fields(config: TrainConfig) -> dict[str, Any]:
    """The config's fields with the agent's beside the run's (their names are distinct), for comparisons."""
    values = config_to_dict(config)
    return {**values.pop("agent"), **values}


def resumed_config(run: Path) -> TrainConfig:
    """The config of the run in ``run`` (one member, or the seed-S members of a --seeds run) with resume set;
    a --stop-at it was given is spent (the resumed run goes on to --updates unless given another)."""
    if run.is_file():
        raise TrajdiffError(f"--resume takes the run folder, not a file: give {run.parent}")
    folders = member_folders(run)
    saved = [read_config(folder) for folder in folders]
    config = saved[0]
    if folders != [run]:
        config = dataclasses.replace(config, seeds=tuple(member.seed for member in saved), out=run)
    return dataclasses.replace(config, resume=run, schedule=dataclasses.replace(config.schedule, stop_at=None))


def read_config(folder: Path) -> TrainConfig:
    """A member's config.json (the checkpoint is read once, later, by the resumed run itself)."""
    path = folder / "config.json"
    if not (folder / CHECKPOINT_NAME).is_file():
        raise TrajdiffError(f"no checkpoint at {folder / CHECKPOINT_NAME}")
    try:
        return config_from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise TrajdiffError(f"{folder} has a checkpoint but no config.json; it is not a trajdiff run folder") from None
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise TrajdiffError(f"{path} is not a readable run config ({type(error).__name__})") from None


def member_configs(config: TrainConfig) -> list[TrainConfig]:
    """One config per member: --seeds S1 S2 ... gives OUT/seed-S1, ...; a single --seed run is itself."""
    if not config.seeds:
        return [dataclasses.replace(config, resume=config.out if config.resume is not None else None)]
    return [dataclasses.replace(config, seed=seed, seeds=(), out=config.out / f"seed-{seed}",
                                resume=config.out / f"seed-{seed}" if config.resume is not None else None)
            for seed in config.seeds]


def check_resumable(saved: TrainConfig, requested: TrainConfig) -> None:
    """Raise when ``requested`` changes anything but the fields a resumption may change."""
    old, new = flat_fields(saved), flat_fields(requested)
    changed = sorted(key for key in old if key not in ("schedule", "out", "resume") and old[key] != new.get(key))
    if changed:
        raise TrajdiffError(f"cannot resume {requested.out}: incompatible config ({', '.join(changed)} "
                            "differ from the saved run)")


def environment_for(dataset: EpisodeDataset, env: str | None) -> str:
    env_id = env or dataset.env_id or default_environment(dataset.name)
    if env_id is None:
        raise TrajdiffError(f"cannot infer the evaluation environment of {dataset.name}; pass --env (e.g. Hopper-v5)")
    return env_id


def build_agent(configs: list[TrainConfig], env_id: str, device: torch.device,
                dataset: EpisodeDataset | None = None) -> DiffusionQLAgent:
    """The agent of these members (see trajdiff.run_folder.agent_for_environment)."""
    return agent_for_environment([config.agent for config in configs], [config.seed for config in configs],
                                 configs[0].schedule.updates, env_id, device, dataset, configs[0].observe)


def check_members(configs: list[TrainConfig]) -> None:
    """Raise unless the members may train as one batch: equal in everything but their own fields."""
    shared = [flat_fields(dataclasses.replace(
        config, **{name: getattr(configs[0], name) for name in MEMBER_TRAIN_FIELDS},
        agent=dataclasses.replace(config.agent, **{name: getattr(configs[0].agent, name) for name in MEMBER_FIELDS}),
    )) for config in configs]
    for config, values in zip(configs[1:], shared[1:]):
        differing = sorted(key for key in values if values[key] != shared[0][key])
        if differing:
            raise TrajdiffError(f"{config.out} cannot train in one batch with {configs[0].out}: "
                                f"{', '.join(differing)} differ")
    outs = [config.out for config in configs]
    if len(set(outs)) != len(outs):
        raise TrajdiffError("two members of one batch write to the same folder")


def train(config: TrainConfig) -> Path:
    """Run (or resume) the run ``config`` describes (one member, or one per --seeds); returns its folder."""
    folder = config.resume if config.resume is not None else config.out
    train_members(member_configs(config), resume=config.resume is not None,
                  resume_command=f"trajdiff train --resume {folder}")
    return folder


def check_start(configs: list[TrainConfig], resume: bool) -> list[dict] | None:
    """Everything that can be checked before any work; the members' checkpoints when resuming."""
    check_members(configs)
    for config in configs:
        check_creatable(config.out)
    if not resume:
        for config in configs:
            if (config.out / CHECKPOINT_NAME).exists():
                raise TrajdiffError(f"{config.out} already holds a run; continue it with --resume, "
                                    "or choose another --out")
        return None
    checkpoints = [load_checkpoint(config.out) for config in configs]
    for config, checkpoint in zip(configs, checkpoints):
        check_resumable(config_from_dict(checkpoint["config"]), config)
    steps = {checkpoint["step"] for checkpoint in checkpoints}
    if len(steps) > 1:
        raise TrajdiffError(f"cannot resume: the members' checkpoints are at different steps ({sorted(steps)})")
    if steps.pop() >= configs[0].schedule.end:
        raise TrajdiffError(f"{configs[0].out} already has {checkpoints[0]['step']} updates; "
                            "ask for more with --updates (or a later --stop-at)")
    return checkpoints


def expertise_table(configs: list[TrainConfig], dataset: EpisodeDataset, device: torch.device) -> torch.Tensor | None:
    """(K, E) BC weight of each episode per member (ones for a member without weighting), or None for no member.

    Writes each weighted member's expertise.json and expertise.png.
    """
    if not any(config.expertise_weighting for config in configs):
        return None
    rows = []
    for config in configs:
        if not config.expertise_weighting:
            rows.append(np.ones(dataset.num_episodes))
            continue
        model = fit_expertise(dataset, config.expertise_components, stream_seed(config.seed, "expertise"),
                              config.expertise_evidence,
                              config.expertise_early_steps)
        atomic_write_json(config.out / "expertise.json", model.summary())
        plot_expertise(model, config.out / "expertise.png", dataset.episode_metadata.get("episode_source"),
                       source_names(dataset.metadata))
        rows.append(episode_weights(model.episode_expertise, dataset.episode_lengths, config.expertise_floor))
    return torch.as_tensor(np.stack(rows), dtype=torch.float32, device=device)


def check_finite(means: dict[str, torch.Tensor], step: int, configs: list[TrainConfig], last_saved: int) -> None:
    """Stop a run whose losses left the reals, naming the update, the loss and the member."""
    for key, values in means.items():
        bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
        if bad:
            raise TrajdiffError(
                f"training diverged: {key} is {values[bad[0]].item()} in the updates up to {step} in "
                f"{configs[bad[0]].out}; the last good checkpoint (update {last_saved}) is kept")


def train_members(configs: list[TrainConfig], resume: bool = False, resume_command: str | None = None) -> None:
    """Train K members as one batch, each into its own folder (``config.out``); resume them all when asked."""
    checkpoints = check_start(configs, resume)
    first = configs[0]
    device = resolve_device(first.schedule.device)
    seed_everything(stream_seed(first.seed, "libraries"))
    dataset = load_dataset(first.dataset)
    env_id = environment_for(dataset, first.env)
    dataset = dataset.with_observation_columns(observed_columns(env_id, first.observe))
    agent = build_agent(configs, env_id, device, dataset)
    sampler = TrajectorySampler(dataset, first.agent.history_len, [c.agent.n_step for c in configs],
                                [c.agent.discount for c in configs], [c.seed for c in configs], device)
    folders = [RunFolder(config.out) for config in configs]  # a second process into these folders stops here
    try:
        engine = UpdateEngine(agent, sampler, first.batch_size, expertise_table(configs, dataset, device))
        step, earlier_wall_s = 0, [0.0] * len(configs)
        if checkpoints is not None:
            restore(agent, sampler, engine, checkpoints)
            step = checkpoints[0]["step"]
            earlier_wall_s = [checkpoint["wall_s"] for checkpoint in checkpoints]
        capture_if_asked(engine, first.schedule, device)
        for config in configs:
            atomic_write_json(config.out / "config.json", {
                **config_to_dict(config), "env_id": env_id, "dataset_name": dataset.name,
                "resolved_device": str(device), "members_trained_with": len(configs), "versions": library_versions()})
        loggers = [RunLogger(config.out, resume_step=step if checkpoints else None, tensorboard=config.tensorboard)
                   for config in configs]
        loop(configs, agent, engine, sampler, loggers, env_id, step, earlier_wall_s, dataset.name, device,
             resume_command or "the same command")
    finally:
        for folder in folders:
            folder.close()


def capture_if_asked(engine: UpdateEngine, schedule: Schedule, device: torch.device) -> None:
    """Capture the update as a CUDA graph when the schedule asks for it and the device allows; say which runs."""
    if not schedule.cuda_graph or device.type != "cuda":
        return
    reason = graph_support(device)
    if reason is None:
        engine.capture()
    print(f"trajdiff: updates run {'as a replayed CUDA graph' if reason is None else f'eagerly: {reason}'}",
          file=sys.stderr)


def restore(agent: DiffusionQLAgent, sampler: TrajectorySampler, engine: UpdateEngine,
            checkpoints: list[dict]) -> None:
    """Load every member's saved state, generators and metric sums; say when random streams start afresh."""
    for message in load_member_states(agent, [checkpoint["agent"] for checkpoint in checkpoints]):
        print(f"trajdiff: {message}", file=sys.stderr)
    for generator, checkpoint in zip(sampler.generators, checkpoints):
        fresh = stream_seed(checkpoint["config"]["seed"], "windows", checkpoint["step"])
        restore_generator(generator, checkpoint["sampler_generator"], fresh)
    restore_global_rng(checkpoints[0])
    engine.load_sums([checkpoint["metric_sums"] for checkpoint in checkpoints], checkpoints[0]["metric_count"])


def loop(configs: list[TrainConfig], agent: DiffusionQLAgent, engine: UpdateEngine, sampler: TrajectorySampler,
         loggers: list[RunLogger], env_id: str, step: int, earlier_wall_s: list[float], dataset_name: str,
         device: torch.device, resume_command: str) -> None:
    """The training loop: update, and at its points log (with an evaluation) and checkpoint."""
    first = configs[0]
    schedule = first.schedule
    row_every = schedule.eval_every or schedule.checkpoint_every
    members = f"{len(configs)} members, " if len(configs) > 1 else ""
    bar = tqdm(total=schedule.updates, initial=step, desc=f"train {dataset_name} ({members}{device})", unit="update",
               dynamic_ncols=True)
    started, started_step, last_saved = time.time(), step, step
    try:
        while step < schedule.end:
            engine.update()
            step += 1
            bar.update(1)
            if step % row_every == 0 or step == schedule.updates:  # not at --stop-at: a resumed run is the straight one
                means = engine.means()
                check_finite(means, step, configs, last_saved)
                bar.set_postfix({key.split("/")[1]: f"{float(means[key].mean()):.3g}"
                                 for key in ("loss/critic", "loss/bc", "loss/q")})
                rows = [{"step": step, **{column_name(key): float(value[k]) for key, value in means.items()},
                         "updates_per_s": (step - started_step) / (time.time() - started)}
                        for k in range(len(configs))]
                if schedule.eval_every:
                    evaluate_into(rows, agent, env_id, first, bar)
                for row, logger, wall_s, config in zip(rows, loggers, earlier_wall_s, configs):
                    row["wall_s"] = wall_s + time.time() - started  # training and evaluation so far
                    logger.write(row)
                    if schedule.eval_every:
                        plot_progress(logger.rows(), config.out / "learning-curve.png",
                                      f"{dataset_name}, seed {config.seed}")
            if step % schedule.checkpoint_every == 0 or step == schedule.end:
                save(configs, agent, engine, sampler, env_id, step, [w + time.time() - started for w in earlier_wall_s])
                last_saved = step
    except KeyboardInterrupt:
        bar.close()
        print(f"trajdiff: interrupted at update {step}; the last checkpoint is at update {last_saved}; "
              f"continue with: {resume_command}", file=sys.stderr)
        raise
    finally:
        bar.close()
        for logger in loggers:
            logger.close()
    print(f"trajdiff: trained {len(configs)} member(s) on {device} into "
          f"{', '.join(str(config.out) for config in configs)}")


def evaluate_into(rows: list[dict], agent: DiffusionQLAgent, env_id: str, config: TrainConfig, bar: tqdm) -> None:
    """Evaluate every member at once and add its return and score to its row."""
    results = evaluate(agent, env_id, config.schedule.eval_episodes, agent.seeds, observe=config.observe)
    for row, result in zip(rows, results):
        summary = result.summary()
        row.update(return_mean=summary["return_mean"], return_std=summary["return_std"],
                   normalized_score=summary["normalized_score_mean"])
    scores = ", ".join(f"{row['normalized_score']:.1f}" for row in rows)
    bar.write(f"step {rows[0]['step']}: normalised score {scores}")


def save(configs: list[TrainConfig], agent: DiffusionQLAgent, engine: UpdateEngine, sampler: TrajectorySampler,
         env_id: str, step: int, wall_s: list[float]) -> None:
    """Every member's checkpoint, refused for non-finite weights (the previous one stays)."""
    broken = agent.nonfinite_members()
    if broken:
        raise TrajdiffError(f"training diverged: non-finite weights at update {step} in {configs[broken[0]].out}; "
                            "its last good checkpoint is kept")
    save_checkpoints([config.out / CHECKPOINT_NAME for config in configs], [{
        "agent": member_state(agent, k), "step": step, "config": config_to_dict(config), "env_id": env_id,
        "sampler_generator": generator_state(sampler.generators[k]),
        "metric_sums": {key: value[k:k + 1].cpu() for key, value in engine.sums.items()},
        "metric_count": engine.count, "wall_s": wall_s[k],
    } for k, config in enumerate(configs)])
