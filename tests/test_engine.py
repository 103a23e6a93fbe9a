"""The update engine: metric means at log points, and (with CUDA) the captured graph against eager updates."""

import pytest
import torch

from tests.test_agent import dataset
from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.data import TrajectorySampler
from trajdiff.engine import WARMUP_UPDATES, UpdateEngine


def build(device, members=2, weights=None):
    seeds = list(range(members))
    sampler = TrajectorySampler(dataset(), 3, [2] * members, [0.99] * members, seeds, device)
    agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig(history_len=3, n_step=2, hidden_dim=32, ema_start=0)] * members,
                             100, device, seeds)
    return UpdateEngine(agent, sampler, 16, weights, cuda_graph=True)


def test_means_are_the_average_of_each_updates_metrics():
    engine = build(torch.device("cpu"))
    twin = build(torch.device("cpu"))  # the same seeds: the same updates, run by hand
    by_hand = []
    for _ in range(4):
        engine.step()
        by_hand.append(twin.agent.update(twin.sampler.draw(16)))
    means = engine.means()
    for key in ("loss/critic", "loss/bc", "q/mean"):
        expected = torch.stack([metrics[key] for metrics in by_hand]).mean(dim=0)
        torch.testing.assert_close(means[key], expected)
    engine.step()
    assert engine.count == 1 and means["loss/critic"].shape == (2,)


def test_weight_statistics_per_member():
    weights = torch.tensor([[1.0, 1.0], [0.5, 3.0]])  # member 0 unweighted, member 1 weights its two episodes
    engine = build(torch.device("cpu"), weights=weights)
    engine.step()
    means = engine.means()
    assert means["weight/std"][0] == 0 and means["weight/min"][1] >= 0.5 and means["weight/max"][1] <= 3.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_replays_the_eager_update():
    """The graph is captured after WARMUP_UPDATES eager updates; replays then match eager updates."""
    graphed, eager = build(torch.device("cuda")), build(torch.device("cuda"))
    eager.use_graph = False
    for _ in range(WARMUP_UPDATES + 5):
        graphed.step()
        eager.step()
    assert graphed.graph is not None
    torch.testing.assert_close(graphed.means()["loss/critic"], eager.means()["loss/critic"], rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(graphed.agent.actor.parameters(), eager.agent.actor.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
