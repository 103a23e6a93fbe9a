"""``trajdiff data info``: what a dataset holds, at a glance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import tyro

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.load import load_dataset
from trajdiff.data.registry import environment_family, normalized_score


@dataclass(frozen=True)
class DataInfoConfig:
    """Print transitions, episodes, ends, and the return and length distributions of a dataset."""

    dataset: Annotated[str, tyro.conf.Positional] = "default"
    """A D4RL-layout hdf5 file, a D4RL name, a Minari id, or 'default' (the embedded dataset)."""
    json: bool = False
    """Print one JSON object instead of the table."""


def dataset_summary(dataset: EpisodeDataset) -> dict[str, Any]:
    """The figures ``data info`` prints, as plain Python values."""
    returns = dataset.episode_returns
    lengths = dataset.episode_lengths
    summary: dict[str, Any] = {
        "name": dataset.name,
        "env_id": dataset.env_id,
        "observation_dim": dataset.observation_dim,
        "action_dim": dataset.action_dim,
        "transitions": dataset.num_transitions,
        "episodes": dataset.num_episodes,
        "terminals": int(dataset.terminals.sum()),
        "timeouts": int(dataset.timeouts.sum()),
        "return": _spread(returns),
        "length": _spread(lengths),
    }
    family = environment_family(dataset.env_id or dataset.name)
    if family is not None:
        summary["normalized_return"] = _spread(np.array([normalized_score(family, r) for r in returns]))
    if "episode_source" in dataset.episode_metadata:
        sources, counts = np.unique(dataset.episode_metadata["episode_source"], return_counts=True)
        summary["episode_source_counts"] = {int(s): int(c) for s, c in zip(sources, counts)}
    return summary


def _spread(values: np.ndarray) -> dict[str, float]:
    return {"min": float(np.min(values)), "median": float(np.median(values)), "max": float(np.max(values)),
            "mean": float(np.mean(values))}


def run_data_info(config: DataInfoConfig) -> None:
    dataset = load_dataset(config.dataset)
    summary = dataset_summary(dataset)
    if config.json:
        print(json.dumps(summary))
        return
    print(f"dataset        {summary['name']}  (env {summary['env_id'] or 'not recorded'})")
    print(f"sizes          observations {summary['observation_dim']}, actions {summary['action_dim']}")
    print(f"transitions    {summary['transitions']:,}")
    print(f"episodes       {summary['episodes']:,}  (terminals {summary['terminals']:,}, "
          f"timeouts {summary['timeouts']:,})")
    rows = [("return", "return", ".1f"), ("length", "length", ".0f"), ("normalised", "normalized_return", ".1f")]
    print(f"{'':15}{'min':>10}{'median':>10}{'max':>10}{'mean':>10}")
    for label, key, spec in rows:
        if key in summary:
            values = summary[key]
            print(f"{label:15}" + "".join(f"{values[s]:>10{spec}}" for s in ("min", "median", "max", "mean")))
    if "episode_source_counts" in summary:
        print(f"episode source {summary['episode_source_counts']}  (0 = medium, 1 = expert)")
