"""A probabilistic model of how expert each trajectory is, and the BC weights it yields.

Each episode's evidence of quality is its return per step: how much reward the behaviour earns
per step, whatever the episode's length. (Return, and length, were tried too: their spread within
one policy, from falls and time limits, is far from Gaussian, so BIC split single-policy data into
several components; return per step kept one component on single-quality data and still separated
medium from expert, see README "Data expertise".) A 1-D Gaussian mixture (scikit-learn) is fitted
with 1..max_components components and the number chosen by BIC, so data of a single quality stays
one component instead of being split arbitrarily. p(expert | episode) is the posterior of the
component with the highest return per step; with one component there is nothing to tell apart and
every episode gets p = 1 (uniform weights).
Every window inherits its episode's p.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trajdiff.data.episodes import EpisodeDataset


@dataclass(frozen=True)
class ExpertiseModel:
    """The fitted model. Shapes: E episodes; K selected components."""

    episode_expertise: np.ndarray
    """(E,) p(expert | episode)."""
    components: int
    """K, selected by BIC."""
    bic: dict[int, float]
    """BIC of each candidate number of components (lower is better)."""
    component_weights: np.ndarray = field(default_factory=lambda: np.ones(1))
    """(K,) mixture weights, ordered by increasing return per step."""
    component_mean_returns: np.ndarray = field(default_factory=lambda: np.zeros(1))
    """(K,) mean return of the episodes each component claims, in the same order."""

    def summary(self) -> dict[str, object]:
        return {
            "components": self.components,
            "bic": {str(k): v for k, v in self.bic.items()},
            "component_weights": self.component_weights.tolist(),
            "component_mean_returns": self.component_mean_returns.tolist(),
            "episode_expertise": self.episode_expertise.tolist(),
        }


def episode_evidence(dataset: EpisodeDataset) -> np.ndarray:
    """(E, 1) per-episode evidence: return per step."""
    return (dataset.episode_returns / dataset.episode_lengths)[:, None]


def fit_expertise(dataset: EpisodeDataset, max_components: int = 3, seed: int = 0) -> ExpertiseModel:
    """Fit mixtures of 1..max_components Gaussians to the evidence and keep the lowest BIC."""
    from sklearn.mixture import GaussianMixture

    evidence = episode_evidence(dataset)
    scale = evidence.std(axis=0)
    features = (evidence - evidence.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    candidates = range(1, min(max_components, len(features)) + 1)
    models, bic = {}, {}
    for count in candidates:
        model = GaussianMixture(count, covariance_type="full", n_init=3, reg_covar=1e-3, random_state=seed)
        model.fit(features)
        models[count], bic[count] = model, float(model.bic(features))
    best = min(bic, key=bic.get)
    model = models[best]
    posterior = model.predict_proba(features)  # (E, K)
    order = np.argsort(model.means_[:, 0])  # components by increasing return per step
    hard = posterior.argmax(axis=1)
    returns = dataset.episode_returns
    mean_returns = np.array([returns[hard == k].mean() if (hard == k).any() else np.nan for k in order])
    expertise = posterior[:, order[-1]] if best > 1 else np.ones(len(features))
    return ExpertiseModel(expertise, best, bic, model.weights_[order], mean_returns)


def expertise_weights(expertise: torch.Tensor, floor: float) -> torch.Tensor:
    """w = floor + (1 - floor) * p, normalised to mean 1 over the batch.

    Shapes: expertise (B,) -> (B,). The ratio of any two weights stays within [floor, 1 / floor].
    """
    weights = floor + (1.0 - floor) * expertise
    return weights / weights.mean()


def plot_expertise(model: ExpertiseModel, path, sources: np.ndarray | None = None) -> None:  # noqa: ANN001
    """Histogram of p(expert) per episode, one colour per recorded source label when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 21)
    if sources is None:
        axis.hist(model.episode_expertise, bins=bins, color="tab:blue")
    else:
        for label, name in ((0, "medium (source 0)"), (1, "expert (source 1)")):
            axis.hist(model.episode_expertise[sources == label], bins=bins, alpha=0.7, label=name)
        axis.legend()
    axis.set_xlabel("p(expert | episode)")
    axis.set_ylabel("episodes")
    axis.set_title(f"{model.components} component(s) selected by BIC")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
