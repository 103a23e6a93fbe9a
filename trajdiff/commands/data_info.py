"""``trajdiff data info``: what a dataset holds, at a glance, and its expertise model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.load import load_dataset
from trajdiff.data.registry import environment_family, normalized_score
from trajdiff.data.returns import discounted_returns_to_go
from trajdiff.envs import Observe, observed_columns
from trajdiff.errors import require
from trajdiff.expertise import Evidence, fit_expertise
from trajdiff.plots import check_figure_path, plot_expertise, source_names


@dataclass(frozen=True)
class DataInfoConfig:
    """Print transitions, episodes, ends, and the return and length distributions of a dataset."""

    dataset: Annotated[str, tyro.conf.Positional] = "default"
    """A D4RL-layout hdf5 file, a D4RL name, a Minari id, or 'default' (the embedded dataset)."""
    json: bool = False
    """Print one JSON object instead of the table."""
    expertise: bool = False
    """Fit the expertise model and print it."""
    plot: Path | None = None
    """Also write a histogram of p(expert) per episode to this PNG (with --expertise)."""
    evidence: Evidence = "early-reward"
    """Per-episode evidence of quality: mean reward over the first steps, or the return."""
    early_steps: int = 50
    """Steps from each episode's start that the early-reward evidence averages over."""
    observe: Observe = "all"
    """Summarise the observations as an agent trained with --observe would see them."""
    discount: float = 0.99
    """Discount of the per-state return-to-go row (the training default), to hold against a run's q_mean."""

    def __post_init__(self) -> None:
        require(self.early_steps >= 1, "--early-steps must be at least 1")
        require(0 < self.discount <= 1, "--discount must be in (0, 1]")
        require(self.plot is None or self.expertise, "--plot draws the expertise model: add --expertise")
        if self.plot is not None:
            check_figure_path(self.plot)


def dataset_summary(dataset: EpisodeDataset, discount: float) -> dict[str, Any]:
    """The figures ``data info`` prints, as plain Python values (``discount``: of the return-to-go)."""
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
        "discount": discount,
        "return_to_go": _spread(discounted_returns_to_go(dataset.rewards, dataset.episode_ends, lengths, discount)),
        "digest": dataset.digest(),
    }
    for key in ("policy", "policy_return", "behavior_command", "behavior_trainer"):
        if key in dataset.metadata:
            summary[key] = dataset.metadata[key]
    for key in ("behavior_starts", "behavior_curve"):
        if key in dataset.metadata:
            summary[key] = json.loads(dataset.metadata[key])
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
    dataset = dataset.with_observation_columns(observed_columns(dataset.env_id or dataset.name, config.observe))
    summary = dataset_summary(dataset, config.discount)
    if config.expertise:
        model = fit_expertise(dataset, evidence=config.evidence, early_steps=config.early_steps)
        summary.update(model.summary())
        if config.plot is not None:
            plot_expertise(model, config.plot, dataset.episode_metadata.get("episode_source"),
                           source_names(dataset.metadata))
            summary["expertise_plot"] = str(config.plot)
        if "episode_source" in dataset.episode_metadata and model.components > 1:
            from sklearn.metrics import roc_auc_score

            summary["expertise_auroc_vs_source"] = float(
                roc_auc_score(dataset.episode_metadata["episode_source"], model.episode_expertise))
    if config.json:
        print(json.dumps(summary))
        return
    print(f"dataset        {summary['name']}  (env {summary['env_id'] or 'not recorded'})")
    print(f"sizes          observations {summary['observation_dim']}, actions {summary['action_dim']}")
    print(f"transitions    {summary['transitions']:,}")
    print(f"digest         {summary['digest']}  (sha256 of the transitions' content)")
    print(f"episodes       {summary['episodes']:,}  (terminals {summary['terminals']:,}, "
          f"timeouts {summary['timeouts']:,})")
    rows = [("return", "return", ".1f"), ("length", "length", ".0f"), ("normalised", "normalized_return", ".1f"),
            ("return-to-go", "return_to_go", ".1f")]
    print(f"{'':15}{'min':>10}{'median':>10}{'max':>10}{'mean':>10}")
    for label, key, spec in rows:
        if key in summary:
            values = summary[key]
            print(f"{label:15}" + "".join(f"{values[s]:>10{spec}}" for s in ("min", "median", "max", "mean")))
    print(f"{'':15}return-to-go: of every state, discounted at {summary['discount']:g} to its episode's end")
    if "episode_source_counts" in summary:
        names = source_names(dataset.metadata)
        named = f"  ({', '.join(f'{k} = {name}' for k, name in enumerate(names))})" if names else ""
        print(f"episode source {summary['episode_source_counts']}{named}")
    _print_behavior(summary)
    if config.expertise:
        bic = ", ".join(f"{k}: {v:.1f}" for k, v in summary["bic"].items())
        print(f"expertise      {summary['components']} component(s) by BIC ({bic}) on {summary['evidence']}")
        for weight, mean in zip(summary["component_weights"], summary["component_mean_returns"]):
            claimed = "no episodes" if mean is None else f"mean return {mean:.1f}"
            print(f"  component    weight {weight:.2f}, {claimed}")
        expertise = np.array(summary["episode_expertise"])
        print(f"  p(expert)    mean {expertise.mean():.2f}, episodes above 0.5: {(expertise > 0.5).sum()}")
        if "expertise_auroc_vs_source" in summary:
            print(f"  AUROC of p(expert) against the source labels: {summary['expertise_auroc_vs_source']:.3f}")
        if "expertise_plot" in summary:
            print(f"  histogram    {summary['expertise_plot']}")


def _print_behavior(summary: dict[str, Any]) -> None:
    """The behaviour run a collected dataset records: the policy, the command, where each of its starts began
    (a run continued on another machine is not the run an unbroken one makes) and its evaluation curve."""
    if "policy" in summary:
        print(f"policy         {summary['policy']} (evaluated return {summary.get('policy_return', '?')})")
    if "behavior_command" in summary:
        print(f"behaviour run  {summary['behavior_command']}  (trainer {summary.get('behavior_trainer', '?')})")
    if summary.get("behavior_starts"):
        starts = ", ".join(f"step {start['at_step']} on {start['cpu']} (code {start['code_commit'][:8]})"
                           for start in summary["behavior_starts"])
        print(f"  starts       {starts}")
    if "behavior_curve" in summary:
        points = ", ".join(f"{f'{step // 1000}k' if step % 1000 == 0 else step} {value:.0f}"
                           for step, value in summary["behavior_curve"])
        print(f"  evaluations  {points}")
