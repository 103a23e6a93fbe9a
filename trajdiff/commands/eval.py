"""``trajdiff eval``: evaluate a trained run (every member of a --seeds run) and report returns and scores."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from trajdiff.data import load_dataset
from trajdiff.devices import resolve_device
from trajdiff.errors import TrajdiffError, require
from trajdiff.evaluate import EvaluationPlan, evaluate, record_video
from trajdiff.files import nearest_existing
from trajdiff.measures import TAIL_WEIGHT
from trajdiff.run_folder import SavedRun, check_same_data

MAX_EPISODES = 10_000_000
"""More episodes per member than anyone waits for (each is up to 1,000 simulator steps)."""


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a run in its environment: return and normalised score per episode, for every member."""

    run: Annotated[Path, tyro.conf.Positional]
    """A run folder (with checkpoint.pt, or the seed-S folders of a --seeds run) or a checkpoint file."""
    episodes: int = 10
    """Episodes per member (in parallel vectorised environments)."""
    seed: int = 1
    """Evaluation round: each member's environment starts and action noise come from its own seed and this
    number (trajdiff.streams); 0 repeats the evaluations made during training, others give fresh starts."""
    deterministic: bool = False
    """Pick the candidate action with the highest Q instead of sampling by softmax over Q."""
    video: Path | None = None
    """Also render one episode of the first member to this file (mp4 or gif; MUJOCO_GL picks the OpenGL backend:
    docs/export.md)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    json: bool = False
    """Print one JSON object per member, then one with the mean over members, instead of the report."""
    accept_changed_dataset: bool = False
    """Evaluate although the run's dataset file now holds other data than the run trained on."""
    q_tail_weight: float = TAIL_WEIGHT
    """Q accuracy: on an episode cut by the time limit, leave out the states whose unseen rest of the episode
    weighs more than this (discount^steps left); the critic's values of the others are compared with the
    discounted returns obtained from them (docs: "Evaluation measures")."""

    def __post_init__(self) -> None:
        require(self.episodes >= 1, "--episodes must be at least 1")
        require(self.seed >= 0, "--seed must be at least 0")
        require(self.episodes <= MAX_EPISODES, f"--episodes must be at most {MAX_EPISODES:,}")
        require(0 < self.q_tail_weight < 1, "--q-tail-weight must be in (0, 1)")
        if self.video is not None and self.video.suffix.lower() not in (".mp4", ".gif"):
            raise TrajdiffError(f"--video {self.video}: give a file ending in .mp4 or .gif")


def check_dataset_unchanged(run: SavedRun) -> None:
    """Where the run's dataset file is still there, it must hold what the run trained on (one-line error)."""
    source, saved = run.checkpoints[0]["config"]["dataset"], run.checkpoints[0]["dataset"]
    if source != "default" and not Path(source).expanduser().is_file():
        return  # gone or remote: evaluation needs no data
    dataset = load_dataset(source)
    check_same_data(source, dataset.digest(), dataset.num_transitions, saved, run.folders[0], "evaluate")


def run_eval(config: EvalConfig) -> None:
    device = resolve_device(config.device)
    run = SavedRun.read(config.run)  # no dataset needed: the run was trained for its env_id's spaces
    if not config.accept_changed_dataset:
        check_dataset_unchanged(run)
    agent, notes = run.agent(device)
    for note in notes:
        print(f"trajdiff: {note}", file=sys.stderr)
    broken = agent.nonfinite_members()
    if broken:
        raise TrajdiffError(f"{run.folders[broken[0]]} holds non-finite (NaN or infinite) weights: the run diverged "
                            "before this checkpoint was written; there is nothing to evaluate")
    env_id, folders, checkpoints = run.env_id, run.folders, run.checkpoints
    if config.video is not None:  # first: a bad path, a missing GL or video backend fails before the long part
        existing = nearest_existing(config.video.parent)
        if not existing.is_dir():
            raise TrajdiffError(f"cannot write the video {config.video}: {existing} is a file")
        record_video(agent, env_id, config.video, run.seeds, config.seed, run.observe)
    results = evaluate(agent, env_id, EvaluationPlan(
        config.episodes, run.seeds, config.seed, deterministic=config.deterministic, observe=run.observe,
        discounts=[member.discount for member in agent.configs], tail_weight=config.q_tail_weight, progress=True))
    summaries = [{"run": str(folder), "seed": seed, "checkpoint_step": checkpoint["step"], **result.summary()}
                 for folder, seed, checkpoint, result in zip(folders, run.seeds, checkpoints, results)]
    if config.video is not None:
        summaries[0]["video"] = str(config.video)
    if len(summaries) > 1:
        scores = [summary["normalized_score_mean"] for summary in summaries]
        returns = [summary["return_mean"] for summary in summaries]
        mean = {"run": str(config.run), "members": len(summaries), "return_mean": float(np.mean(returns)),
                "normalized_score_mean": float(np.mean(scores)), "normalized_score_std_over_members":
                float(np.std(scores))}
    if config.json:
        for summary in summaries:
            print(json.dumps(summary))
        if len(summaries) > 1:
            print(json.dumps(mean))
        return
    for summary in summaries:
        print(f"{summary['run']}: {env_id}, checkpoint at {summary['checkpoint_step']} updates, "
              f"{config.episodes} episodes")
        print(f"  return      {summary['return_mean']:.1f} ± {summary['return_std']:.1f}")
        print(f"  normalised  {summary['normalized_score_mean']:.1f} ± {summary['normalized_score_std']:.1f}")
        print(f"  Q - return  {summary['q_bias']:.1f} (mean over {summary['q_states']} states), correlation "
              f"{summary['q_correlation']:.2f}")
        print(f"  action change {summary['action_change']:.4f} (mean squared, between consecutive steps)")
        for index, (value, score) in enumerate(zip(summary["episode_returns"], summary["episode_normalized_scores"])):
            print(f"    episode {index}: return {value:.1f}, normalised {score:.1f}")
    if len(summaries) > 1:
        print(f"mean over {mean['members']} members: return {mean['return_mean']:.1f}, normalised "
              f"{mean['normalized_score_mean']:.1f} (std over members {mean['normalized_score_std_over_members']:.1f})")
