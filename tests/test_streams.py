"""Random streams: every purpose of every member from its own seed, none shared, none shifted onto another."""

import numpy as np
import pytest
import torch

from tests.test_agent import dataset
from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.data import TrajectorySampler
from trajdiff.errors import TrajdiffError
from trajdiff.evaluate import EvaluationPlan, evaluate, evaluation_streams
from trajdiff.streams import PURPOSES, stream_generator, stream_seed

CPU = torch.device("cpu")
SEEDS = [0, 1, 2, 3, 4]


def first_draws(generator):
    return tuple(torch.randint(2**31, (4,), generator=generator).tolist())


def test_no_two_streams_of_five_members_start_alike():
    """The generators a 5-member run builds (windows, diffusion, evaluation actions) and the seeds it hands out
    (weights, evaluation starts, expertise, libraries): all distinct, across members and purposes."""
    agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig()] * 5, 10, CPU, SEEDS)
    sampler = TrajectorySampler(dataset(), [AgentConfig()] * 5, SEEDS)
    evaluation_random, starts = evaluation_streams(SEEDS, 0, 3, CPU)
    generators = [*agent.random.generators, *sampler.generators, *evaluation_random.generators]
    for seed in SEEDS:
        generators += [stream_generator(seed, purpose) for purpose in ("weights", "expertise", "libraries")]
    seeds = [g.initial_seed() for g in generators] + starts
    assert len(set(seeds)) == len(seeds) == 5 * (3 + 3) + 5 * 3
    draws = [first_draws(g) for g in generators]
    assert len(set(draws)) == len(draws)
    # the generators the run uses are the streams of their member's seed
    for k, seed in enumerate(SEEDS):
        assert agent.random.generators[k].initial_seed() == stream_seed(seed, "diffusion")
        assert sampler.generators[k].initial_seed() == stream_seed(seed, "windows")


def test_every_purpose_of_many_seeds_is_distinct():
    seeds = [stream_seed(seed, purpose, *path) for seed in range(64) for purpose in PURPOSES
             for path in ((), (0,), (1,))]
    assert len(set(seeds)) == len(seeds)


def test_a_members_run_does_not_depend_on_the_seeds_of_the_others():
    """Member 1 (seed 3) beside seed 0, and beside seed 11: the same initial weights, batches, noise,
    updates and evaluation starts and action noise."""
    runs = []
    for seeds in ([0, 3], [11, 3]):
        configs = [AgentConfig(history_len=2, n_step=2)] * 2
        agent = DiffusionQLAgent(11, 3, 1.0, configs, 10, CPU, seeds)
        sampler = TrajectorySampler(dataset(), configs, seeds)
        initial = next(agent.actor.parameters())[1].clone()
        batches = []
        for _ in range(3):
            batch = sampler.draw(8)
            batches.append(batch.indices[1])
            agent.update(batch)
        random, starts = evaluation_streams(seeds, 0, 4, CPU)
        runs.append((initial, batches, next(agent.actor.parameters())[1], starts[4:],
                     random.normal((5,))[1]))
    (initial_a, batches_a, weights_a, starts_a, noise_a), (initial_b, batches_b, weights_b, starts_b, noise_b) = runs
    assert torch.equal(initial_a, initial_b) and torch.equal(weights_a, weights_b)
    assert all(torch.equal(a, b) for a, b in zip(batches_a, batches_b))
    assert starts_a == starts_b and torch.equal(noise_a, noise_b)


@pytest.mark.slow
def test_evaluation_returns_of_a_member_do_not_depend_on_the_others():
    returns = []
    for seeds in ([0, 3], [11, 3]):
        agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig(hidden_dim=16, action_candidates=4)] * 2, 10, CPU, seeds)
        results = evaluate(agent, "Hopper-v5", EvaluationPlan(2, seeds))
        returns.append(results[1].returns)
    np.testing.assert_array_equal(returns[0], returns[1])


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seeds_outside_32_bits_are_refused(seed):
    with pytest.raises(TrajdiffError, match="0..4294967295"):
        stream_seed(seed, "windows")
