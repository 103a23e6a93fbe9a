"""``trajdiff train``: the training loop. It owns time: progress, evaluation cadence, logs, checkpoints.

One run trains K members at once (``--seeds``, or the bench's batches of a method and its ablations):
each member writes its own folder (config.json, progress.csv, tensorboard/, checkpoint.pt), exactly
what a single run writes, and a single ``--seed`` run is the case K = 1 in ``--out`` itself.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trajdiff.agent import MAX_Q_REPEATS, DiffusionQLAgent
from trajdiff.agent_state import load_member_states, member_state
from trajdiff.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_global_rng, save_checkpoints, write_failure
from trajdiff.commands.train_config import (
    TrainConfig,
    check_members,
    check_resumable,
    config_from_dict,
    config_to_dict,
    member_configs,
)
from trajdiff.data import EpisodeDataset, TrajectorySampler, default_environment, load_dataset
from trajdiff.devices import resolve_device
from trajdiff.engine import UpdateEngine, update_mode
from trajdiff.envs import observed_columns
from trajdiff.errors import TrajdiffError, require
from trajdiff.evaluate import MAX_ENVIRONMENTS, EvaluationPlan, evaluate
from trajdiff.expertise import bc_weight_table, member_expertise
from trajdiff.files import atomic_write_json
from trajdiff.measures import PROGRESS_COLUMNS
from trajdiff.plots import plot_expertise, plot_progress, source_names
from trajdiff.provenance import library_versions, provenance
from trajdiff.resources import check_update_fits, check_window_fits, selection_memory_bytes, update_memory_bytes
from trajdiff.run_folder import RunFolder, agent_for_environment, check_creatable, check_reusable, check_same_data
from trajdiff.runlog import Logger, RunLogger, TensorBoardLogger, WandbLogger, progress_bar
from trajdiff.streams import generator_state, restore_generator, seed_everything, stream_seed

if TYPE_CHECKING:
    from tqdm import tqdm


def saved_metric_name(name: str) -> str:
    """A metric's name in a checkpoint's sums: checkpoints written before the metrics took their progress.csv
    names hold ``loss/critic``, ``q/mean`` and so on; they resume under the names ``critic_loss``, ``q_mean``."""
    if "/" not in name:
        return name
    group, metric = name.split("/")
    return f"{metric}_loss" if group == "loss" else f"{group}_{metric}"


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


def train(config: TrainConfig) -> Path:
    """Run (or resume) the run ``config`` describes (one member, or one per --seeds); returns its folder."""
    folder = config.resume if config.resume is not None else config.out
    require(config.resume is None or config.out == config.resume,
            f"--resume continues a run in its own folder ({config.resume}), not in --out {config.out}: drop --out, "
            "or copy the run folder there and resume the copy")
    train_members(member_configs(config), resume=config.resume is not None,
                  resume_command=f"trajdiff train --resume {folder}")
    return folder


def check_start(configs: list[TrainConfig], resume: bool) -> list[dict] | None:
    """Everything that can be checked before any work; the members' checkpoints when resuming."""
    check_members(configs)
    require(not configs[0].wandb or importlib.util.find_spec("wandb") is not None,
            "--wandb needs Weights & Biases: pip install 'trajdiff[wandb]'")
    for config in configs:
        check_creatable(config.out)
    if not resume:
        for config in configs:
            if (config.out / CHECKPOINT_NAME).exists():
                raise TrajdiffError(f"{config.out} already holds a run; continue it with --resume, "
                                    "or choose another --out")
            check_reusable(config.out)
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
    """(K, E) BC weight of each episode per member (trajdiff.expertise.bc_weight_table), or None for no member
    with weighting. Writes each weighted member's expertise.json and expertise.png."""
    agents = [config.agent for config in configs]
    models = member_expertise(agents, [config.seed for config in configs], dataset)
    for config, model in zip(configs, models):
        if model is not None:
            atomic_write_json(config.out / "expertise.json", model.summary())
            plot_expertise(model, config.out / "expertise.png", dataset.episode_metadata.get("episode_source"),
                           source_names(dataset.metadata))
    table = bc_weight_table(models, agents, dataset)
    return None if table is None else torch.as_tensor(table, dtype=torch.float32, device=device)


def what_is_kept(last_saved: int | None) -> str:
    """The truth about checkpoints after a run stops early (a fresh run that never saved leaves nothing)."""
    if last_saved is None:
        return "no checkpoint had been written yet, so nothing of the run is kept"
    return f"the last good checkpoint (update {last_saved}) is kept"


def check_finite(means: dict[str, torch.Tensor], step: int, configs: list[TrainConfig],
                 last_saved: int | None) -> None:
    """Stop a run whose losses left the reals, naming the update, the loss and the member."""
    for key, values in means.items():
        bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
        if bad:
            raise TrajdiffError(
                f"training diverged: {key} is {values[bad[0]].item()} in the updates up to {step} in "
                f"{configs[bad[0]].out}; {what_is_kept(last_saved)}")


def train_members(configs: list[TrainConfig], resume: bool = False, resume_command: str | None = None) -> None:
    """Train K members as one batch, each into its own folder (``config.out``); resume them all when asked."""
    checkpoints = check_start(configs, resume)
    first = configs[0]
    device = resolve_device(first.schedule.device)
    seed_everything(stream_seed(first.seed, "libraries"))
    dataset = load_dataset(first.dataset)
    digest = dataset.digest()
    if checkpoints is not None and not first.accept_changed_dataset:
        check_same_data(first.dataset, digest, dataset.num_transitions, checkpoints[0]["dataset"], first.out,
                        "resume")
    env_id = environment_for(dataset, first.env)
    dataset = dataset.with_observation_columns(observed_columns(env_id, first.observe))
    check_fits(configs, dataset, device)
    agent = build_agent(configs, env_id, device, dataset)
    sampler = TrajectorySampler(dataset, [config.agent for config in configs], [config.seed for config in configs],
                                device)
    folders = open_folders(configs)  # a second process into these folders stops here
    for folder in folders:
        if folder.removed:
            print(f"trajdiff: {folder.path} held an earlier run that never checkpointed; removed its "
                  f"{', '.join(folder.removed)}", file=sys.stderr)
    failed = True
    try:
        mode, said = update_mode(device, first.schedule.cuda_graph, first.schedule.compile_update)
        engine = UpdateEngine(agent, sampler, first.batch_size, expertise_table(configs, dataset, device), mode)
        step, earlier_wall_s = 0, [0.0] * len(configs)
        if checkpoints is not None:
            restore(agent, sampler, engine, checkpoints)
            step = checkpoints[0]["step"]
            earlier_wall_s = [checkpoint["wall_s"] for checkpoint in checkpoints]
        engine.start()
        if said is not None:
            print(f"trajdiff: {said}", file=sys.stderr)
        for config, checkpoint in zip(configs, checkpoints or [None] * len(configs)):
            write_config(config, checkpoint, env_id, dataset, digest, device, len(configs))
        loggers = [run_logger(config, step if checkpoints else None) for config in configs]
        data = {"name": dataset.name, "sha256": digest, "transitions": dataset.num_transitions}
        TrainingRun(configs, agent, engine, sampler, loggers, env_id, data, step, earlier_wall_s,
                    resume_command or "the same command").train()
        failed = False
    finally:
        for folder in folders:
            folder.close(failed)


def run_logger(config: TrainConfig, resume_step: int | None) -> RunLogger:
    """progress.csv, and the loggers the config asks for beside it."""
    others: list[Logger] = []
    if config.tensorboard:
        others.append(TensorBoardLogger(config.out, resume_step))
    if config.wandb:
        others.append(WandbLogger(config.out, config_to_dict(config)))
    return RunLogger(config.out, resume_step, others)


def open_folders(configs: list[TrainConfig]) -> list[RunFolder]:
    """Every member's folder, created and locked; if one cannot be, those opened already are put back."""
    folders: list[RunFolder] = []
    try:
        for config in configs:
            folders.append(RunFolder(config.out))
    except BaseException:
        for folder in folders:
            folder.close(failed=True)
        raise
    return folders


def check_fits(configs: list[TrainConfig], dataset: EpisodeDataset, device: torch.device) -> None:
    """Refuse what cannot work before any work: windows longer than every episode, updates larger than memory."""
    agent, longest = configs[0].agent, int(dataset.episode_lengths.max())
    check_window_fits("history-len", agent.history_len, longest)
    check_window_fits("action-chunk", agent.action_chunk, longest)  # before n-step, which equals it with chunks
    check_window_fits("n-step", max(config.agent.n_step for config in configs), longest)
    repeats = MAX_Q_REPEATS if any(config.agent.max_q_backup for config in configs) else 1
    needed = update_memory_bytes(agent, len(configs), configs[0].batch_size, dataset.observation_dim, repeats)
    check_update_fits(needed, device, f"--batch-size {configs[0].batch_size} with --history-len {agent.history_len}")
    if configs[0].schedule.eval_every:
        environments = min(configs[0].schedule.eval_episodes, MAX_ENVIRONMENTS)
        needed = selection_memory_bytes(len(configs), environments, agent.action_candidates, agent.hidden_dim,
                                        agent.diffusion_steps)
        check_update_fits(needed, device, f"--action-candidates {agent.action_candidates} at evaluation",
                          "use fewer --action-candidates")


def write_config(config: TrainConfig, checkpoint: dict | None, env_id: str, dataset: EpisodeDataset, digest: str,
                 device: torch.device, members: int) -> None:
    """config.json: the resolved config, where the run lives and has lived, its data, device and versions, and
    every start of the run (at which update, with which code, machine and command): its per-part provenance."""
    path = config.out / "config.json"
    previous = json.loads(path.read_text()) if checkpoint is not None and path.is_file() else {}
    history, changes = previous.get("folder_history", []), previous.get("dataset_changes", [])
    here = str(config.out.resolve())
    if checkpoint is not None and checkpoint["dataset"]["sha256"] != digest:  # accepted: check_same_data
        changes.append({"at_update": checkpoint["step"], "from": checkpoint["dataset"]["sha256"], "to": digest})
    payload = {**config_to_dict(config), "env_id": env_id, "dataset_name": dataset.name,
               "dataset_sha256": digest, "dataset_transitions": dataset.num_transitions,
               "dataset_changes": changes, "folder_history": history if history[-1:] == [here] else [*history, here],
               "resolved_device": str(device), "members_trained_with": members, "versions": library_versions(),
               "starts": [*previous.get("starts", []), {"at_update": checkpoint["step"] if checkpoint else 0,
                                                         **provenance()}]}
    try:
        atomic_write_json(path, payload)
    except OSError as error:
        raise TrajdiffError(f"cannot write {path} ({write_failure(path, error)})") from None


def restore(agent: DiffusionQLAgent, sampler: TrajectorySampler, engine: UpdateEngine,
            checkpoints: list[dict]) -> None:
    """Load every member's saved state, generators and metric sums; say when random streams start afresh."""
    for message in load_member_states(agent, [checkpoint["agent"] for checkpoint in checkpoints]):
        print(f"trajdiff: {message}", file=sys.stderr)
    for generator, checkpoint in zip(sampler.generators, checkpoints):
        fresh = stream_seed(checkpoint["config"]["seed"], "windows", checkpoint["step"])
        restore_generator(generator, checkpoint["sampler_generator"], fresh)
    restore_global_rng(checkpoints[0])
    engine.load_sums([{saved_metric_name(key): value for key, value in checkpoint["metric_sums"].items()}
                      for checkpoint in checkpoints], checkpoints[0]["metric_count"])


@dataclass
class TrainingRun:
    """One call of a run, from its first update to its last: the members' configs and loggers, the agent, its
    update engine and sampler, and the counters (updates done, wall-clock time before this call, the last
    checkpoint). :meth:`train` is the loop; it owns the evaluation and checkpoint cadence."""

    configs: list[TrainConfig]
    agent: DiffusionQLAgent
    engine: UpdateEngine
    sampler: TrajectorySampler
    loggers: list[RunLogger]
    env_id: str
    data: dict[str, Any]
    """The dataset's name, sha256 and transitions, recorded in every checkpoint."""
    step: int = 0
    """Updates done."""
    earlier_wall_s: list[float] = field(default_factory=list)
    """Each member's wall-clock seconds before this call (a resumed run goes on counting)."""
    resume_command: str = "the same command"
    last_saved: int | None = None
    started: float = 0.0
    started_step: int = 0

    def train(self) -> None:
        """Update, and at the run's points log (with an evaluation) and checkpoint."""
        schedule, members = self.configs[0].schedule, len(self.configs)
        row_every = schedule.eval_every or schedule.checkpoint_every
        counted = f"{members} members, " if members > 1 else ""
        bar = progress_bar(total=schedule.updates, initial=self.step, unit="update", dynamic_ncols=True,
                           desc=f"train {self.data['name']} ({counted}{self.agent.device})")
        self.started, self.started_step = time.time(), self.step
        self.last_saved = self.step if self.step > 0 else None  # a resumed run starts from its checkpoint
        try:
            while self.step < schedule.end:
                self.engine.update()
                self.step += 1
                bar.update(1)
                if self.step % row_every == 0 or self.step == schedule.updates:  # not at --stop-at: a resumed
                    self.log(bar)                                                # run is the straight one
                if self.step % schedule.checkpoint_every == 0 or self.step == schedule.end:
                    self.save()
                    self.last_saved = self.step
        except KeyboardInterrupt:
            bar.close()
            advice = ("no checkpoint had been written yet, so nothing is kept; start again with the same command"
                      if self.last_saved is None else
                      f"the last checkpoint is at update {self.last_saved}; continue with: {self.resume_command}")
            print(f"trajdiff: interrupted at update {self.step}; {advice}", file=sys.stderr)
            raise
        finally:
            bar.close()
            for logger in self.loggers:
                logger.close()
        print(f"trajdiff: trained {members} member(s) on {self.agent.device} into "
              f"{', '.join(str(config.out) for config in self.configs)}")

    def wall_s(self, member: int) -> float:
        """Member ``member``'s wall-clock seconds of training and evaluation so far, this call included."""
        return self.earlier_wall_s[member] + time.time() - self.started

    def log(self, bar: tqdm) -> None:
        """One progress.csv row per member: the metric means since the last row, an evaluation when due."""
        means = self.engine.means()
        check_finite(means, self.step, self.configs, self.last_saved)
        bar.set_postfix({key.removesuffix("_loss"): f"{float(means[key].mean()):.3g}"
                         for key in ("critic_loss", "bc_loss", "q_loss")}, refresh=False)
        speed = (self.step - self.started_step) / (time.time() - self.started)
        rows = [{"step": self.step, **{key: float(value[k]) for key, value in means.items()}, "updates_per_s": speed}
                for k in range(len(self.configs))]
        evaluating = bool(self.configs[0].schedule.eval_every)
        if evaluating:
            evaluate_into(rows, self.agent, self.env_id, self.configs[0], bar)
        for k, (row, logger, config) in enumerate(zip(rows, self.loggers, self.configs)):
            row["wall_s"] = self.wall_s(k)  # training and evaluation so far
            logger.write(row)
            if evaluating:
                plot_progress(logger.rows(), config.out / "learning-curve.png",
                              f"{self.data['name']}, seed {config.seed}")

    def save(self) -> None:
        """Every member's checkpoint, refused for non-finite weights (the previous one, if any, stays)."""
        broken = self.agent.nonfinite_members()
        if broken:
            raise TrajdiffError(f"training diverged: non-finite weights at update {self.step} in "
                                f"{self.configs[broken[0]].out}; {what_is_kept(self.last_saved)}")
        record = {"sha256": self.data["sha256"], "transitions": self.data["transitions"]}
        save_checkpoints([config.out / CHECKPOINT_NAME for config in self.configs], self.last_saved, [{
            "agent": member_state(self.agent, k), "step": self.step, "config": config_to_dict(config),
            "env_id": self.env_id, "sampler_generator": generator_state(self.sampler.generators[k]),
            "metric_sums": {key: value[k:k + 1].cpu() for key, value in self.engine.sums.items()},
            "metric_count": self.engine.count, "wall_s": self.wall_s(k), "dataset": record,
        } for k, config in enumerate(self.configs)])


def evaluate_into(rows: list[dict], agent: DiffusionQLAgent, env_id: str, config: TrainConfig, bar: tqdm) -> None:
    """Evaluate every member at once and add its return, score and measures (trajdiff.measures) to its row."""
    results = evaluate(agent, env_id, EvaluationPlan(config.schedule.eval_episodes, agent.seeds, observe=config.observe,
                                                     discounts=[member.discount for member in agent.configs]))
    for row, result in zip(rows, results):
        summary = result.summary()
        row.update(return_mean=summary["return_mean"], return_std=summary["return_std"],
                   normalized_score=summary["normalized_score_mean"],
                   **{column: summary[name] for name, column in PROGRESS_COLUMNS.items()})
    scores = ", ".join(f"{row['normalized_score']:.1f}" for row in rows)
    bar.write(f"step {rows[0]['step']}: normalised score {scores}")
