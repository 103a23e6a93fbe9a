"""``trajdiff train``'s configuration: the dataclasses, their JSON form, and what a resumption may change.

A run's folder is found from where it is: a resumed config's ``out`` is the folder given to ``--resume``,
never a path stored inside it (config.json keeps earlier locations as ``folder_history`` only).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tyro

from trajdiff.agent import AgentConfig, declared, shared_values
from trajdiff.checkpoint import CHECKPOINT_NAME, member_folders
from trajdiff.envs import Observe
from trajdiff.errors import TrajdiffError, require
from trajdiff.presets import find_preset
from trajdiff.run_folder import saved_agent_config
from trajdiff.streams import check_seed

MAX_UPDATES = 1_000_000_000
"""The longest run trajdiff accepts: 500 times Diffusion-QL's 2M updates."""
MAX_EVAL_EPISODES = 10_000
"""The most episodes one evaluation may run."""


@dataclass(frozen=True)
class RunSchedule:
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
    compile_update: bool = False
    """Compile the update with torch.compile: more updates per second on a CPU after one to three minutes of
    compilation (measured in docs/performance.md); equal to eager updates to float rounding. On CUDA it replaces
    the CUDA graph."""

    def __post_init__(self) -> None:
        for name in ("updates", "eval_episodes", "checkpoint_every"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        require(self.eval_every >= 0, "--eval-every must be at least 0 (0: never)")
        require(self.updates <= MAX_UPDATES, f"--updates must be at most {MAX_UPDATES:,} (more would run for years "
                                             "at any speed trajdiff reaches)")
        require(self.eval_episodes <= MAX_EVAL_EPISODES, f"--eval-episodes must be at most {MAX_EVAL_EPISODES:,} "
                                                         "(every evaluation runs them all, up to 1,000 steps each)")
        require(self.stop_at is None or 1 <= self.stop_at <= self.updates, "--stop-at must be in 1..--updates")

    @property
    def end(self) -> int:
        """The update this call of the run stops at."""
        return self.updates if self.stop_at is None else self.stop_at


@dataclass(frozen=True)
class TrainConfig:
    """Train a trajectory-aware Diffusion-QL agent on an offline dataset, evaluating as it goes."""

    dataset: str = declared("default", resumable=True)
    """hdf5 file, D4RL name, Minari id, or 'default' (the embedded hopper dataset)."""
    env: str | None = None
    """Evaluation environment id; inferred from the dataset's metadata or name when omitted."""
    preset: str | None = None
    """Diffusion-QL's published hyperparameters for a D4RL dataset name (e.g. hopper-medium-v2)."""
    out: Path = declared(Path("runs/train"), per_member=True, resumable=True)
    """Run folder: config.json, progress.csv, tensorboard/, checkpoint.pt."""
    resume: Path | None = declared(None, per_member=True, resumable=True)
    """Continue the run in this folder (up to --updates total updates)."""
    batch_size: int = 256
    """Windows per update."""
    seed: int = declared(0, per_member=True)
    """Seed of every random stream of the run (weights, windows, diffusion noise, evaluation, expertise), each
    derived from it apart from the others (trajdiff.streams); 0..2^32-1."""
    seeds: tuple[int, ...] = ()
    """Train one member per seed as one batched computation, into OUT/seed-S/ each (instead of --seed)."""
    observe: Observe = "all"
    """What the agent sees of each observation, in the data and in the environment alike: all of it, only the
    joint positions (velocities must be inferred from the recent past) or only the velocities."""
    tensorboard: bool = declared(True, resumable=True)
    """Also write TensorBoard event files."""
    wandb: bool = declared(False, resumable=True)
    """Also log to Weights & Biases (pip install 'trajdiff[wandb]'), offline into OUT/wandb unless WANDB_MODE
    says otherwise."""
    accept_changed_dataset: bool = declared(False, resumable=True)
    """With --resume: go on although the dataset's content differs from what the run trained on (config.json
    records it); without it such a resume is refused."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """Algorithm hyperparameters: must match when a run is resumed."""
    schedule: RunSchedule = declared(default_factory=RunSchedule, resumable=True)
    """Updates, evaluation and checkpoint cadence, device: may change when a run is resumed."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", absolute_if_file(self.dataset))
        require(not self.seeds or self.seed in (0, *self.seeds),
                f"--seed {self.seed} with --seeds {' '.join(map(str, self.seeds))}: give one or the other "
                "(--seeds trains one member per seed)")
        require(self.batch_size >= 1, "--batch-size must be at least 1")
        require(len(set(self.seeds)) == len(self.seeds), "--seeds repeats a seed")
        check_seed(self.seed)
        for seed in self.seeds:
            check_seed(seed, "--seeds")


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
    if start.preset is None:
        return TrainConfig()
    preset = find_preset(start.preset)
    return TrainConfig(preset=start.preset, agent=preset.applied_to(AgentConfig()),
                       schedule=RunSchedule(updates=preset.updates))


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from its JSON form (config.json or a checkpoint)."""
    values = dict(values)
    values["agent"] = saved_agent_config(values)
    values["schedule"] = RunSchedule(**values["schedule"])
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
        if run.name == CHECKPOINT_NAME:
            raise TrajdiffError(f"--resume takes the run folder, not a file: give {run.parent}")
        raise TrajdiffError(f"--resume takes a run folder; {run} is a file")
    folders = member_folders(run)
    saved = [read_config(folder) for folder in folders]
    config = saved[0]
    if folders != [run]:
        check_every_member_saved(run, folders)
        config = dataclasses.replace(config, seeds=tuple(member.seed for member in saved))
    # the run lives where it is now: a copied or moved folder resumes in place, never into its old path
    return dataclasses.replace(config, out=run, resume=run,
                               schedule=dataclasses.replace(config.schedule, stop_at=None))


def check_every_member_saved(run: Path, folders: list[Path]) -> None:
    """A --seeds run resumes whole: refuse one with a member's folder or checkpoint missing."""
    missing = sorted(folder.name for folder in run.glob("seed-*") if folder.is_dir() and folder not in folders)
    trained_with = json.loads((folders[0] / "config.json").read_text()).get("members_trained_with", len(folders))
    if missing or trained_with != len(folders):
        what = f"{', '.join(missing)} has no checkpoint" if missing else \
            f"{len(folders)} of its {trained_with} members have a checkpoint"
        raise TrajdiffError(f"cannot resume {run}: {what}; a --seeds run resumes with every member")


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


def absolute_if_file(source: str) -> str:
    """A dataset named by a file path, made absolute, so that a run does not depend on the folder it started in;
    names (default, D4RL names, Minari ids) stay as they are."""
    path = Path(source).expanduser()
    if path.suffix in (".hdf5", ".h5") or path.is_file():
        return str(path.resolve())
    return source


def check_resumable(saved: TrainConfig, requested: TrainConfig) -> None:
    """Raise when ``requested`` changes anything but the fields declared resumable: the schedule, the folder, and
    the dataset's path (its content is checked against the checkpoint's record, or --accept-changed-dataset)."""
    resumable = {item.name for item in dataclasses.fields(TrainConfig) if item.metadata.get("resumable")}
    old, new = flat_fields(saved), flat_fields(requested)
    changed = sorted(key for key in old if key not in resumable and old[key] != new.get(key))
    if changed:
        differences = "; ".join(f"{key} {new.get(key)} asked, {old[key]} saved" for key in changed)
        raise TrajdiffError(f"cannot resume {requested.out}: incompatible config ({differences})")


def check_members(configs: list[TrainConfig]) -> None:
    """Raise unless the members may train as one batch: equal in everything but their own fields."""
    shared = [{**shared_values(config), **shared_values(config.agent), "agent": None} for config in configs]
    for config, values in zip(configs[1:], shared[1:]):
        differing = sorted(key for key in values if values[key] != shared[0][key])
        if differing:
            raise TrajdiffError(f"{config.out} cannot train in one batch with {configs[0].out}: "
                                f"{', '.join(differing)} differ")
    outs = [config.out for config in configs]
    if len(set(outs)) != len(outs):
        raise TrajdiffError("two members of one batch write to the same folder")


