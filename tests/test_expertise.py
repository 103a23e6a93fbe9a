import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from tests.conftest import make_arrays
from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.data import EpisodeDataset, TrajectorySampler
from trajdiff.expertise import episode_evidence, episode_weights, fit_expertise


def synthetic(qualities: list[float], episodes_each: int, seed: int = 0,
              fall_probability: list[float] | None = None) -> tuple[EpisodeDataset, np.ndarray]:
    """Episodes whose per-step reward is drawn around each quality level; lengths 90..110.

    With fall_probability, an episode of source k falls (terminates after 10..30 steps) with that
    probability: the same policy, a much lower return.
    """
    rng = np.random.default_rng(seed)
    lengths, ends, labels = [], [], []
    for label, _ in enumerate(qualities):
        for _ in range(episodes_each):
            falls = fall_probability is not None and rng.random() < fall_probability[label]
            lengths.append(int(rng.integers(10, 30) if falls else rng.integers(90, 110)))
            ends.append("terminal" if falls else "timeout")
            labels.append(label)
    arrays = make_arrays(lengths, ends)
    position = 0
    for length, label in zip(lengths, labels):
        episode_rate = qualities[label] + 0.1 * rng.standard_normal()
        arrays["rewards"][position:position + length] = episode_rate + 0.2 * rng.standard_normal(length)
        position += length
    return EpisodeDataset.from_arrays(arrays), np.array(labels)


def test_early_reward_evidence_is_the_mean_over_the_first_steps():
    arrays = make_arrays([3, 6], ["terminal", "timeout"])
    arrays["rewards"][:] = [1, 2, 3, 10, 20, 30, 40, 50, 60]
    dataset = EpisodeDataset.from_arrays(arrays)
    np.testing.assert_allclose(episode_evidence(dataset, "early-reward", early_steps=4), [2.0, 25.0])
    np.testing.assert_allclose(episode_evidence(dataset, "return"), [6.0, 210.0])


def test_two_qualities_are_recovered():
    dataset, labels = synthetic([1.0, 3.0], 40)
    model = fit_expertise(dataset)
    assert model.components == 2
    assert roc_auc_score(labels, model.episode_expertise) > 0.99
    assert ((model.episode_expertise > 0.5) == labels.astype(bool)).mean() > 0.95


def test_single_quality_selects_one_component():
    dataset, _ = synthetic([2.0], 80)
    model = fit_expertise(dataset)
    assert model.components == 1
    assert (model.episode_expertise == 1).all()


def test_a_policy_that_sometimes_falls_is_one_component():
    """Bimodal returns from one policy: the return mixture splits it, the early-reward one does not."""
    dataset, _ = synthetic([2.0], 120, fall_probability=[0.4])
    assert fit_expertise(dataset, evidence="return", early_steps=10).components == 2
    model = fit_expertise(dataset, evidence="early-reward", early_steps=10)
    assert model.components == 1 and (model.episode_expertise == 1).all()


def test_expert_that_starts_slower_is_ranked_by_return():
    """Source 1 earns less per early step but falls far less often: it is the expert component."""
    dataset, labels = synthetic([2.0, 1.5], 80, fall_probability=[0.9, 0.1])
    model = fit_expertise(dataset, evidence="early-reward", early_steps=10)
    assert model.components == 2
    assert model.component_mean_returns[-1] > model.component_mean_returns[0]
    assert roc_auc_score(labels, model.episode_expertise) > 0.99


def test_weights_have_mean_one_over_steps_and_respect_the_floor():
    # p = 0 for a 3-step episode, 1 for a 1-step one, floor 0.25: raw weights 0.25 and 1, whose mean
    # over the 4 steps is (3 x 0.25 + 1) / 4 = 0.4375
    weights = episode_weights(np.array([0.0, 1.0]), np.array([3, 1]), floor=0.25)
    np.testing.assert_allclose(weights, [0.25 / 0.4375, 1 / 0.4375])
    np.testing.assert_allclose(np.average(weights, weights=[3, 1]), 1.0)
    assert weights[0] / weights[1] == 0.25


def test_a_batch_of_low_expertise_windows_weighs_less():
    """The normaliser is the dataset's: a batch drawn from the non-expert episodes keeps its smaller weight
    (a per-batch mean would scale it back up to 1)."""
    weights = episode_weights(np.array([0.0, 0.0, 1.0, 1.0]), np.array([10, 10, 10, 10]), floor=0.2)
    low_batch = weights[[0, 1, 0, 1]]
    assert low_batch.mean() < 0.5 and weights[[2, 3]].mean() > 1.5


def test_unit_weights_train_like_no_weights():
    """A member without weighting beside weighted ones gets a row of ones: the same update as no weights."""
    dataset = EpisodeDataset.from_arrays(make_arrays([30, 20], ["terminal", "timeout"], 11, 3))
    results = []
    for weights in (None, torch.ones(1, 32)):
        sampler = TrajectorySampler(dataset, [AgentConfig()], [0])
        agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig()], 10, torch.device("cpu"), [0])
        metrics = agent.update(sampler.draw(32), weights)
        results.append((metrics["bc_loss"], agent.actor.denoiser.body[0].weight.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])  # only the order of summation differs
    torch.testing.assert_close(results[0][1], results[1][1])


def test_weights_change_the_update():
    """Not vacuous: weights that single out half the batch give another BC loss than none."""
    dataset = EpisodeDataset.from_arrays(make_arrays([30, 20], ["terminal", "timeout"], 11, 3))
    losses = []
    for weights in (None, torch.cat([torch.full((1, 16), 1.9), torch.full((1, 16), 0.1)], dim=1)):
        sampler = TrajectorySampler(dataset, [AgentConfig()], [0])
        agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig()], 10, torch.device("cpu"), [0])
        losses.append(agent.update(sampler.draw(32), weights)["bc_loss"])
    assert not torch.allclose(losses[0], losses[1])
