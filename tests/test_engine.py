"""The update engine: metric means, and the graph path proven on CPU.

A CUDA graph replays the kernels it recorded on the tensors it recorded them on. ``TracedReplay`` does the
same on CPU: it traces one update into aten ops with make_fx (the traced graph holds the very tensors the
update read and wrote) and re-runs the trace. So whatever would break a CUDA graph here (a tensor re-bound
instead of changed in place, a host branch, a generator not advanced) breaks the replay too.
"""

import contextlib

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils._python_dispatch import TorchDispatchMode

from tests.test_agent import dataset
from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.agent_state import load_member_states, member_state
from trajdiff.data import TrajectorySampler
from trajdiff.engine import UpdateEngine, graph_support, update_mode
from trajdiff.errors import TrajdiffError

CPU = torch.device("cpu")


class TracedReplay:
    """A CPU stand-in for a CUDA graph: the update traced once into aten ops, then re-run."""

    runs_while_recording = True

    def warm_up(self):
        return contextlib.nullcontext()

    def record(self, update, generators):
        traced = make_fx(lambda: update())()

        def replay():
            with torch.no_grad():  # the trace holds the backward's ops explicitly
                traced()
        return replay


def build(device=CPU, members=2, weights=None, history_len=3, n_step=2, total_updates=100, mode="eager",
          **agent_fields):
    seeds = list(range(members))
    configs = [AgentConfig(history_len=history_len, n_step=n_step, hidden_dim=32, **agent_fields)] * members
    sampler = TrajectorySampler(dataset(), configs, seeds, device)
    agent = DiffusionQLAgent(11, 3, 1.0, configs, total_updates, device, seeds)
    return UpdateEngine(agent, sampler, 16, weights, mode)


def training_state(engine, sums=True):
    """Every tensor an update changes, by name: the agent's state tree (and the engine's metric sums)."""
    def named(tree, prefix):
        if isinstance(tree, torch.Tensor):
            return {prefix: tree}
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {name: tensor for key, value in items for name, tensor in named(value, f"{prefix}.{key}").items()}

    tensors = named(engine.agent.state_dict(), "agent")
    if sums:
        tensors |= {f"sums.{key}": value for key, value in engine.sums.items()}
    return tensors


def assert_same_state(first, second, sums=True):
    mine, theirs = training_state(first, sums), training_state(second, sums)
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key


def test_means_are_the_average_of_each_updates_metrics():
    engine = build()
    twin = build()  # the same seeds: the same updates, run by hand
    by_hand = []
    for _ in range(4):
        engine.update()
        by_hand.append(twin.agent.update(twin.sampler.draw(16)))
    means = engine.means()
    for key in ("critic_loss", "bc_loss", "q_mean"):
        expected = torch.stack([metrics[key] for metrics in by_hand]).mean(dim=0)
        torch.testing.assert_close(means[key], expected)
    engine.update()
    assert engine.count == 1 and means["critic_loss"].shape == (2,)


def test_weight_statistics_per_member():
    weights = torch.tensor([[1.0, 1.0], [0.5, 3.0]])  # member 0 unweighted, member 1 weights its two episodes
    engine = build(weights=weights)
    engine.update()
    means = engine.means()
    assert means["weight_std"][0] == 0 and means["weight_min"][1] >= 0.5 and means["weight_max"][1] <= 3.0


REPLAY_CASES = {
    "K=1, history 1": dict(members=1, history_len=1, n_step=1),
    "K=3, history 1, max-Q backup, diffusion-ql decay": dict(members=3, history_len=1, n_step=1, max_q_backup=True,
                                                             lr_decay="diffusion-ql"),
    "K=1, history 8, n-step 5, cosine decay": dict(members=1, history_len=8, n_step=5, lr_decay="cosine"),
    "K=3, history 8, critic history": dict(members=3, history_len=8, n_step=3, critic_uses_history=True),
    "K=2, history 4, approximated Q-action": dict(members=2, history_len=4, n_step=2, q_action="approximated"),
    "K=3, frames encoder, expertise weights": dict(members=3, history_len=4, history_encoder="frames",
                                                   weights=torch.tensor([[1.0, 1.0], [0.2, 1.0], [1.0, 0.5]])),
    "K=2, history 3, action chunks of 3": dict(members=2, history_len=3, n_step=3, action_chunk=3),
    "K=3, history 2, lambda-returns, max-Q backup": dict(members=3, history_len=2, n_step=3, critic_target="lambda",
                                                         td_lambda=0.7, max_q_backup=True),
}


@pytest.mark.parametrize("case", REPLAY_CASES.values(), ids=REPLAY_CASES.keys())
def test_replayed_updates_equal_eager_updates_bitwise(case):
    """Capture, then 7 replays across the EMA's start (update 4), against 7 eager updates of a twin."""
    case = dict(case, ema_start=4, ema_every=2, total_updates=10)
    replayed, eager = build(**case), build(**case)
    replayed.capture(TracedReplay())
    assert_same_state(replayed, eager, sums=False)  # capture (warm-up, trace) changed nothing
    assert all((value == 0).all() for value in replayed.sums.values())
    for _ in range(7):
        replayed.update()
        eager.update()
    assert_same_state(replayed, eager)
    replayed_means, eager_means = replayed.means(), eager.means()
    assert replayed_means.keys() == eager_means.keys()
    for key, value in replayed_means.items():
        assert torch.equal(value, eager_means[key]), key
    assert not torch.equal(replayed.agent.ema_actor.denoiser.body[0].weight,
                           build(**case).agent.ema_actor.denoiser.body[0].weight)  # the EMA did switch on


def test_a_resumed_run_captures_after_restore_and_continues_bitwise():
    straight = build(members=2, lr_decay="cosine", total_updates=8)
    for _ in range(6):
        straight.update()
    first = build(members=2, lr_decay="cosine", total_updates=8)
    for _ in range(3):
        first.update()
    resumed = build(members=2, lr_decay="cosine", total_updates=8)
    load_member_states(resumed.agent, [member_state(first.agent, k) for k in range(2)])
    for mine, theirs in zip(resumed.sampler.generators, first.sampler.generators):
        mine.set_state(theirs.get_state())
    resumed.load_sums([{key: value[k:k + 1] for key, value in first.sums.items()} for k in range(2)], first.count)
    resumed.capture(TracedReplay())
    for _ in range(3):
        resumed.update()
    assert_same_state(resumed, straight)


class HostSyncs(TorchDispatchMode):
    """Fails on any op that waits for the device: a scalar read, nonzero, a truth value, a copy to the host."""

    FORBIDDEN = {"aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero", "aten::item"}

    def __init__(self, device):
        super().__init__()
        self.device = device

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in self.FORBIDDEN:
            raise AssertionError(f"host sync: {name}")
        result = func(*args, **(kwargs or {}))
        if name in ("aten::_to_copy", "aten::copy_") and self.device.type != "cpu":
            outputs = result if isinstance(result, tuple | list) else [result]
            assert all(t.device.type != "cpu" for t in outputs if isinstance(t, torch.Tensor)), f"to host: {name}"
        return result


@pytest.mark.parametrize("case", REPLAY_CASES.values(), ids=REPLAY_CASES.keys())
def test_an_update_never_waits_for_the_host(case):
    engine = build(**case)
    engine.compute_update()  # the first allocates the sums
    with HostSyncs(CPU):
        engine.compute_update()


def test_the_no_sync_check_catches_a_host_read():
    engine = build()
    with pytest.raises(AssertionError, match="host sync"), HostSyncs(CPU):
        engine.agent.updates_done()


def test_changes_after_capture_are_in_place_or_refused():
    engine, twin = build(lr_decay="cosine", total_updates=10), build(lr_decay="cosine", total_updates=10)
    engine.capture(TracedReplay())
    # the cosine decay's horizon changed in place: the replay sees it
    engine.agent.decay_horizon.fill_(40.0)
    twin.agent.decay_horizon.fill_(40.0)
    for _ in range(3):
        engine.update()
        twin.update()
    assert_same_state(engine, twin)
    for name, value in (("eta", torch.ones(2)), ("actor_lr", torch.ones(2)), ("grad_norm", torch.ones(2)),
                        ("q_repeats", torch.ones(2)), ("decay_horizon", torch.ones(2)), ("actor", None)):
        with pytest.raises(TrajdiffError, match="captured"):
            setattr(engine.agent, name, value)
    with pytest.raises(TrajdiffError, match="captured"):
        engine.episode_weights = torch.ones(2, 2)
    with pytest.raises(TrajdiffError, match="before"):
        engine.load_sums([{"critic_loss": torch.zeros(1)}] * 2, 0)
    with pytest.raises(TrajdiffError, match="before"):
        load_member_states(engine.agent, [member_state(engine.agent, k) for k in range(2)])
    with pytest.raises(TrajdiffError, match="already"):
        engine.capture(TracedReplay())


def test_the_replay_test_catches_a_re_allocated_tensor():
    """The hazard the in-place rule prevents: a decay horizon re-allocated after capture is never seen."""
    engine, twin = build(lr_decay="cosine", total_updates=10), build(lr_decay="cosine", total_updates=10)
    engine.capture(TracedReplay())
    agent = engine.agent
    object.__setattr__(agent, "decay_horizon", torch.full((2,), 40.0))  # around the guard, as old code did
    twin.agent.decay_horizon.fill_(40.0)
    for _ in range(3):
        engine.update()
        twin.update()
    assert not torch.equal(training_state(engine)["agent.actor.denoiser.body.0.weight"],
                           training_state(twin)["agent.actor.denoiser.body.0.weight"])


def test_graph_support_is_a_version_check_that_says_why():
    assert "CUDA device" in graph_support(CPU)
    cuda = torch.device("cuda")
    assert "2.4.1" in graph_support(cuda, "2.4.1+cu121")
    assert graph_support(cuda, "2.13.0+cu128") is None
    with pytest.raises(TrajdiffError, match="CUDA device"):
        build().capture()


def test_the_update_mode_is_decided_in_one_place():
    """Compiled when asked (on CUDA instead of the graph), a CUDA graph on CUDA when asked, else eager; a sentence
    only where the device changes what was asked."""
    cuda = torch.device("cuda")
    assert update_mode(CPU, cuda_graph=True, compile_update=False) == ("eager", None)
    assert update_mode(CPU, cuda_graph=True, compile_update=True) == ("compiled", None)
    assert update_mode(cuda, cuda_graph=True, compile_update=False) == ("cuda-graph",
                                                                        "updates run as a replayed CUDA graph")
    assert update_mode(cuda, cuda_graph=False, compile_update=False) == ("eager", None)
    mode, said = update_mode(cuda, cuda_graph=True, compile_update=True)
    assert mode == "compiled" and "without a CUDA graph" in said
    engine = build()
    engine.start()  # eager: nothing to capture
    assert not engine.captured


def test_update_counts_are_int64_and_exact_past_float32():
    """At update 2^24 + 1 (odd), an EMA due every 2 updates must not move; a float32 count reads 2^24 (even)."""
    engine = build(members=1, ema_start=0, ema_every=2)
    agent = engine.agent
    assert agent.update_count.dtype == torch.int64
    assert agent.actor_optimizer.update_count is agent.critic_optimizer.update_count is agent.update_count
    with torch.no_grad():
        for parameter in agent.actor.parameters():
            parameter.add_(1.0)  # the EMA actor starts as a copy: move the actor so that an EMA update shows
    before = [p.clone() for p in agent.ema_actor.parameters()]
    agent.update_count.fill_(2**24 + 1)
    agent.update_targets()
    assert all(torch.equal(b, p) for b, p in zip(before, agent.ema_actor.parameters()))
    agent.update_count.fill_(2**24 + 2)
    agent.update_targets()
    assert not all(torch.equal(b, p) for b, p in zip(before, agent.ema_actor.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_replays_the_eager_update():
    """Captured on the run's device; replays then match eager updates (kernels may differ in rounding)."""
    device = torch.device("cuda", torch.cuda.device_count() - 1)
    graphed, eager = build(device), build(device)
    graphed.capture()
    for _ in range(8):
        graphed.update()
        eager.update()
    torch.testing.assert_close(graphed.means()["critic_loss"], eager.means()["critic_loss"], rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(graphed.agent.actor.parameters(), eager.agent.actor.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_compiled_update_equals_eager_updates_to_rounding():
    """torch.compile of the whole update (backward and optimiser steps in one graph, no graph break): weights,
    optimiser state and metric sums as eager updates give them, to float rounding, for the sampled and the
    approximated action, action chunks and lambda-returns."""
    from torch._dynamo.utils import counters

    for fields in (dict(q_action="sampled"), dict(q_action="approximated"), dict(action_chunk=2),
                   dict(critic_target="lambda", max_q_backup=True)):
        torch._dynamo.reset()
        counters.clear()
        compiled = build(members=2, mode="compiled", **fields)
        eager = build(members=2, **fields)
        for _ in range(3):
            compiled.update()
            eager.update()
        assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], dict(counters)
        mine, theirs = training_state(compiled), training_state(eager)
        for key in mine:
            torch.testing.assert_close(mine[key], theirs[key], rtol=1e-5, atol=1e-6, msg=key)
