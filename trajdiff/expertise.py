"""A probabilistic model of how expert each trajectory is, and the BC weights it yields.

Evidence. A trajectory's return mixes the policy's quality with luck: a stochastic hopper expert
that stumbles early earns a tenth of its usual return, so returns of a single policy are bimodal
and a mixture over returns splits one policy in two. The default evidence is therefore the policy's
*signature before outcomes diverge*: the mean reward per step over each episode's first
``early_steps`` steps (the whole episode when shorter). Two policies of different skill move
differently from the first steps; two episodes of one policy look alike until one of them falls.
``evidence="return"`` fits the undiscounted return instead (the earlier model, kept as an option).
docs/expertise.md shows both on collected data, and how early_steps was chosen.

Model. A 1-D Gaussian mixture (scikit-learn) is fitted with 1..max_components components, and the
number is chosen by BIC among the fits whose neighbouring components are apart by Ashman's
D = sqrt(2) |mu_1 - mu_2| / sqrt(s_1^2 + s_2^2) >= 2, the usual criterion for a clean separation:
it stops BIC from splitting a merely skewed distribution (tests/test_expertise.py).
Components are ranked by the mean return of the episodes they claim (an expert may well start
more cautiously than a medium policy: early reward tells policies apart, return says which is
better). p(expert | episode) is the posterior of the highest-return component; with one component
there is nothing to tell apart and every episode gets p = 1 (uniform weights). Every window
inherits its episode's p.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.errors import TrajdiffError
from trajdiff.streams import stream_seed

if TYPE_CHECKING:
    from trajdiff.agent import AgentConfig

Evidence = Literal["early-reward", "return"]


@dataclass(frozen=True)
class ExpertiseModel:
    """The fitted model. Shapes: E episodes; K selected components."""

    episode_expertise: np.ndarray
    """(E,) p(expert | episode)."""
    components: int
    """K, selected by BIC."""
    bic: dict[int, float]
    """BIC of each candidate number of components (lower is better)."""
    evidence: Evidence
    """What the mixture was fitted to (see the module docstring)."""
    component_weights: np.ndarray = field(default_factory=lambda: np.ones(1))
    """(K,) mixture weights, ordered by increasing mean return."""
    component_mean_returns: np.ndarray = field(default_factory=lambda: np.zeros(1))
    """(K,) mean return of the episodes each component claims, in the same order (NaN: claims none)."""

    def summary(self) -> dict[str, object]:
        return {
            "components": self.components,
            "evidence": self.evidence,
            "bic": {str(k): v for k, v in self.bic.items()},
            "component_weights": self.component_weights.tolist(),
            "component_mean_returns": [float(m) if np.isfinite(m) else None for m in self.component_mean_returns],
            "episode_expertise": self.episode_expertise.tolist(),
        }


def episode_evidence(dataset: EpisodeDataset, evidence: Evidence = "early-reward",
                     early_steps: int = 50) -> np.ndarray:
    """(E,) per-episode evidence: mean reward over the first early_steps steps, or the return."""
    if evidence == "return":
        return dataset.episode_returns
    ends = np.minimum(dataset.episode_ends, dataset.episode_starts + early_steps)
    prefix_sums = np.concatenate([[0.0], np.cumsum(dataset.rewards, dtype=np.float64)])
    return (prefix_sums[ends] - prefix_sums[dataset.episode_starts]) / (ends - dataset.episode_starts)


def ashman_separation(means: np.ndarray, variances: np.ndarray) -> float:
    """The smallest Ashman's D between neighbouring 1-D components (inf for one component)."""
    order = np.argsort(means)
    means, variances = means[order], variances[order]
    gaps = np.sqrt(2) * np.diff(means) / np.sqrt(variances[1:] + variances[:-1])
    return float(gaps.min()) if len(gaps) else float("inf")


def fit_expertise(dataset: EpisodeDataset, max_components: int = 3, seed: int = 0,
                  evidence: Evidence = "early-reward", early_steps: int = 50,
                  min_separation: float = 2.0) -> ExpertiseModel:
    """Fit mixtures of 1..max_components Gaussians; keep the lowest BIC among well-separated fits."""
    from sklearn.mixture import GaussianMixture

    if dataset.num_episodes < 2:
        raise TrajdiffError(f"the expertise model compares episodes: {dataset.name} has {dataset.num_episodes}; "
                            "train without --expertise-weighting")
    values = episode_evidence(dataset, evidence, early_steps)
    scale = values.std()
    features = ((values - values.mean()) / (scale if scale > 0 else 1.0))[:, None]  # (E, 1)
    candidates = range(1, min(max_components, len(features)) + 1)
    models, bic = {}, {}
    for count in candidates:
        model = GaussianMixture(count, covariance_type="full", n_init=3, reg_covar=1e-3, random_state=seed)
        model.fit(features)
        models[count], bic[count] = model, float(model.bic(features))
    separated = [count for count in bic if ashman_separation(
        models[count].means_[:, 0], models[count].covariances_.reshape(count)) >= min_separation]
    best = min(separated, key=bic.get)
    model = models[best]
    posterior = model.predict_proba(features)  # (E, K)
    hard = posterior.argmax(axis=1)
    returns = dataset.episode_returns
    claimed_returns = np.array([returns[hard == k].mean() if (hard == k).any() else -np.inf for k in range(best)])
    order = np.argsort(claimed_returns)  # components by increasing mean return of the episodes they claim
    expertise = posterior[:, order[-1]] if best > 1 else np.ones(len(features))
    claimed_returns[~np.isfinite(claimed_returns)] = np.nan
    return ExpertiseModel(expertise, best, bic, evidence, model.weights_[order], claimed_returns[order])


def episode_weights(expertise: np.ndarray, episode_lengths: np.ndarray, floor: float) -> np.ndarray:
    """BC weight of every window of each episode: w = floor + (1 - floor) p, with mean 1 over the dataset.

    Windows are drawn uniformly over time steps, so the mean is over steps (episodes weighted by their
    lengths). The normaliser is this dataset-wide constant, not the batch's mean: a batch's normalised
    loss sum(w l) / sum(w) is a biased estimate, and it would give a batch of low-expertise windows the
    same total weight as a batch of expert ones. Any two weights keep the ratio of their p's affine
    map, within [floor, 1 / floor].
    Shapes: expertise (E,), episode_lengths (E,) -> (E,).
    """
    weights = floor + (1.0 - floor) * np.asarray(expertise, dtype=np.float64)
    return weights / np.average(weights, weights=episode_lengths)


def member_expertise(configs: Sequence[AgentConfig], seeds: Sequence[int],
                     dataset: EpisodeDataset) -> list[ExpertiseModel | None]:
    """Each member's expertise model as its config asks (None for a member without weighting), fitted from the
    member's own ``expertise`` stream."""
    return [fit_expertise(dataset, config.expertise_components, stream_seed(seed, "expertise"),
                          config.expertise_evidence, config.expertise_early_steps)
            if config.expertise_weighting else None for config, seed in zip(configs, seeds)]


def bc_weight_table(models: Sequence[ExpertiseModel | None], configs: Sequence[AgentConfig],
                    dataset: EpisodeDataset) -> np.ndarray | None:
    """(K, E) BC weight of each episode per member (ones for a member without a model), or None for no model."""
    if all(model is None for model in models):
        return None
    return np.stack([np.ones(dataset.num_episodes) if model is None else
                     episode_weights(model.episode_expertise, dataset.episode_lengths, config.expertise_floor)
                     for model, config in zip(models, configs)])
