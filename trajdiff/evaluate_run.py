"""``trajdiff eval``: evaluate a trained run or checkpoint and report returns and normalised scores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from trajdiff.checkpoint import load_checkpoint
from trajdiff.evaluate import evaluate, record_video
from trajdiff.train import build_agent, config_from_dict
from trajdiff.utils import resolve_device


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a checkpoint in its environment: return and normalised score per episode."""

    run: Annotated[Path, tyro.conf.Positional]
    """A run folder (with checkpoint.pt) or a checkpoint file."""
    episodes: int = 10
    """Episodes to run (in parallel vectorised environments)."""
    seed: int = 100_000
    """Seed of the first environment; environment i gets seed + i."""
    deterministic: bool = False
    """Pick the candidate action with the highest Q instead of sampling by softmax over Q."""
    video: Path | None = None
    """Also render one episode to this file (mp4 or gif; see README for the OpenGL it needs)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    json: bool = False
    """Print one JSON object instead of the report."""


def run_eval(config: EvalConfig) -> None:
    device = resolve_device(config.device)
    checkpoint = load_checkpoint(config.run)  # on CPU: generator states must stay CPU tensors
    train_config = config_from_dict(checkpoint["config"])
    env_id = checkpoint["env_id"]
    # no dataset: the checkpoint was trained for env_id's spaces, and the data may live elsewhere now
    agent = build_agent(train_config, env_id, device)
    agent.load_state_dict(checkpoint["agent"])
    if config.video is not None:  # first: a missing GL or video backend fails before the long part
        record_video(agent, env_id, train_config.history_len, config.video, config.seed)
    result = evaluate(agent, env_id, train_config.history_len, config.episodes, config.seed,
                      deterministic=config.deterministic)
    summary = {"checkpoint_step": checkpoint["step"], **result.summary()}
    if config.video is not None:
        summary["video"] = str(config.video)
    if config.json:
        print(json.dumps(summary))
        return
    print(f"{env_id}, checkpoint at {checkpoint['step']} updates, {config.episodes} episodes")
    print(f"return      {summary['return_mean']:.1f} ± {summary['return_std']:.1f}")
    print(f"normalised  {summary['normalized_score_mean']:.1f} ± {summary['normalized_score_std']:.1f}")
    for index, (value, score) in enumerate(zip(summary["episode_returns"], summary["episode_normalized_scores"])):
        print(f"  episode {index}: return {value:.1f}, normalised {score:.1f}")
