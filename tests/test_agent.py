"""The agent against a reference Diffusion-QL update written out from the paper's equations, member by member."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import make_arrays
from tests.data.test_returns import lambda_return_by_recursion
from trajdiff.agent import (
    AgentConfig,
    DiffusionQLAgent,
    actor_loss,
    check_member_configs,
    critic_loss,
    critic_target_value,
    q_loss,
    shared_values,
)
from trajdiff.agent_state import member_state
from trajdiff.data import EpisodeDataset, TrajectorySampler
from trajdiff.errors import TrajdiffError
from trajdiff.nets.mlp import Mish
from trajdiff.optim import decay_period_and_horizon, learning_rate_factor
from trajdiff.streams import MemberRandom

CPU = torch.device("cpu")


def member_layers(sequential, member):
    """(W, b) of each batched linear layer of member ``member``, as plain leaf tensors (W: out x in)."""
    return [(layer.weight[member].T.detach().clone().requires_grad_(), layer.bias[member, 0].detach().clone()
             .requires_grad_()) for layer in sequential if hasattr(layer, "weight")]


def linear(x, weight, bias):
    """x W^T + b through the kernel the agent uses for one member (addmm)."""
    return torch.addmm(bias, x, weight.T)


def mlp(layers, x):
    """Linear-Mish ... Linear. Adam's first steps are lr * sign(gradient), so a rounding-level difference
    in a near-zero gradient moves a weight by 2 lr: to compare at 1e-5, the reference rounds as the agent
    does, with the same matmul kernel (above) and trajdiff's Mish (tested against F.mish in
    tests/nets/test_mlp.py). What it writes out independently is the algorithm."""
    for index, (weight, bias) in enumerate(layers):
        x = linear(x, weight, bias)
        if index < len(layers) - 1:
            x = Mish()(x)
    return x


class ReferenceMember:
    """One member's networks as plain tensors: Diffusion-QL's denoiser (over the concatenated input) and twin critic."""

    def __init__(self, agent, member, steps):
        self.steps = steps

        def networks(actor, critic):
            return {"time": member_layers(actor.denoiser.time_mlp, member),
                    "body": member_layers(actor.denoiser.body, member),
                    "q1": member_layers(critic.heads.q1, member), "q2": member_layers(critic.heads.q2, member)}

        self.live = networks(agent.actor, agent.critic)
        self.ema = networks(agent.ema_actor, agent.critic_target)  # EMA actor and target critic
        self.frequencies = agent.actor.denoiser.embedding.frequencies

    def parameters(self, nets, names):
        return [tensor for name in names for layer in nets[name] for tensor in layer]

    def denoiser(self, nets, x, t, state):
        """eps(x, t, s) = MLP([x, embedding(t), s]); the first layer is written as the sum of its three
        products (W_x x + W_t e(t) + W_s s + b), in the agent's order, so that both round alike."""
        angles = torch.arange(self.steps).float()[:, None] * self.frequencies
        embedding = mlp(nets["time"], torch.cat([angles.sin(), angles.cos()], dim=-1))  # (T, 16) for every step
        (weight, bias), rest = nets["body"][0], nets["body"][1:]
        da, dt = x.shape[1], embedding.shape[1]
        first = (x @ weight[:, :da].T + (embedding @ weight[:, da:da + dt].T)[t]
                 + linear(state, weight[:, da + dt:], bias))
        return mlp(rest, Mish()(first))

    def critic(self, nets, state, action):
        x = torch.cat([state, action], dim=-1)
        return mlp(nets["q1"], x), mlp(nets["q2"], x)


def reference_update(ref, optimizers, batch, noise, member, step, config, max_action=1.0):
    """One Diffusion-QL update (Wang et al. 2022, Algorithm 1) with explicit DDPM maths, for one member."""
    actor_optimizer, critic_optimizer = optimizers
    steps = ref.steps
    t_index = torch.arange(1, steps + 1, dtype=torch.float64)
    betas = (1 - torch.exp(-0.1 / steps - 0.5 * 9.9 * (2 * t_index - 1) / steps**2)).float()
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1), abar[:-1]])

    def sample(nets, state, chain):
        x = chain[0]
        for i in reversed(range(steps)):
            eps = ref.denoiser(nets, x, torch.full((state.shape[0],), i), state)
            x0 = (x / abar[i].sqrt() - (1 / abar[i] - 1).sqrt() * eps).clamp(-max_action, max_action)
            mean = (betas[i] * abar_prev[i].sqrt() / (1 - abar[i])) * x0 \
                + ((1 - abar_prev[i]) * alphas[i].sqrt() / (1 - abar[i])) * x
            if i > 0:
                variance = betas[i] * (1 - abar_prev[i]) / (1 - abar[i])
                x = mean + variance.sqrt() * chain[steps - i]
            else:
                x = mean
        return x.clamp(-max_action, max_action)

    s, a, r = batch.observations[member], batch.actions[member], batch.target_reward[member][:, None]
    s_next, not_done_discount = batch.bootstrap_observations[member, :, 0], batch.bootstrap_weight[member]
    with torch.no_grad():
        a_next = sample(ref.ema, s_next, noise.target_chain[:, member, :, 0, 0])
        target_q1, target_q2 = ref.critic(ref.ema, s_next, a_next)
        y = r + not_done_discount * torch.minimum(target_q1, target_q2)
    q1, q2 = ref.critic(ref.live, s, a)
    critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    critic_parameters = ref.parameters(ref.live, ("q1", "q2"))
    critic_optimizer.zero_grad()
    critic_loss.backward()
    if config.grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(critic_parameters, config.grad_norm)
    critic_optimizer.step()

    t, eps = noise.bc_steps[member], noise.bc_noise[member]
    x_t = abar[t, None].sqrt() * a + (1 - abar[t, None]).sqrt() * eps
    eps_hat = ref.denoiser(ref.live, x_t, t, s)
    bc_loss = ((eps_hat - eps) ** 2).mean()
    if config.q_action == "approximated":  # Efficient Diffusion Policies: the data action, denoised in one step
        # (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar), written as sqrt(1 / abar) x_t - sqrt(1 / abar - 1) eps_hat
        # so that both round alike
        new_action = ((1 / abar[t, None]).sqrt() * x_t - (1 / abar[t, None] - 1).sqrt() * eps_hat).clamp(
            -max_action, max_action)
    else:
        new_action = sample(ref.live, s, noise.policy_chain[:, member])
    q1_new, q2_new = ref.critic(ref.live, s, new_action)
    if noise.first_head[member]:
        q_loss = -q1_new.mean() / q2_new.abs().mean().detach()
    else:
        q_loss = -q2_new.mean() / q1_new.abs().mean().detach()
    actor_optimizer.zero_grad()
    (bc_loss + config.eta * q_loss).backward()
    actor_parameters = ref.parameters(ref.live, ("time", "body"))
    if config.grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(actor_parameters, config.grad_norm)
    actor_optimizer.step()
    with torch.no_grad():
        if step % config.ema_every == 0 and step >= config.ema_start:
            for ema, live in zip(ref.parameters(ref.ema, ("time", "body")), actor_parameters):
                ema.copy_(config.ema_decay * ema + (1 - config.ema_decay) * live)
        for target, live in zip(ref.parameters(ref.ema, ("q1", "q2")), critic_parameters):
            target.copy_((1 - config.tau) * target + config.tau * live)
    return critic_loss.item(), bc_loss.item(), q_loss.item()


def assert_weights_match(mine, theirs, steps=3, lr=1e-3):
    """Equal to 1e-5, but for at most 0.1% of the entries (one, in a tensor of under 1,000), which may differ by
    up to 2 lr per step.

    Adam's step is lr * m / sqrt(v): for a gradient near zero, a float-rounding difference can flip its
    sign and move that weight by 2 lr. An algorithmic difference moves most weights on the scale of lr.
    """
    difference = (mine - theirs).abs()
    allowed = max(1, int(1e-3 * difference.numel()))
    assert (difference > 1e-5).sum() <= allowed, f"{(difference > 1e-5).sum()} of {difference.numel()} differ"
    assert difference.max() <= 2 * lr * steps


def dataset():
    """Two episodes (terminal, timeout) with observations scaled to O(1), as MuJoCo's are (make_arrays
    numbers its rows 0..49, which would magnify rounding differences fifty-fold)."""
    arrays = make_arrays([30, 20], ["terminal", "timeout"], 11, 3)
    arrays["observations"] /= 50
    arrays["next_observations"] /= 50
    return EpisodeDataset.from_arrays(arrays)


@pytest.mark.parametrize("configs", [
    [AgentConfig(ema_start=0, ema_every=2, grad_norm=1.0)],  # exercise EMA and clipping at once
    # three members that differ in what may differ: every slice is its own Diffusion-QL
    [AgentConfig(ema_start=0, ema_every=2, grad_norm=1.0),
     AgentConfig(ema_start=0, ema_every=2, grad_norm=0.0, eta=0.3, actor_lr=1e-3),
     AgentConfig(ema_start=0, ema_every=2, grad_norm=5.0, eta=2.0, critic_lr=1e-4, discount=0.9)],
    # the Q-term's action approximated in one step, for every member of a batch
    [AgentConfig(ema_start=0, ema_every=2, grad_norm=1.0, q_action="approximated"),
     AgentConfig(ema_start=0, ema_every=2, grad_norm=0.0, eta=0.3, q_action="approximated")],
], ids=["one member", "three members", "approximated Q-action"])
def test_each_member_update_equals_reference_diffusion_ql(configs):
    members = len(configs)
    sampler = TrajectorySampler(dataset(), configs, list(range(members)))
    agent = DiffusionQLAgent(11, 3, 1.0, configs, 10, CPU, seeds=[5 + k for k in range(members)])
    references = [ReferenceMember(agent, k, configs[k].diffusion_steps) for k in range(members)]
    optimizers = [(torch.optim.Adam(ref.parameters(ref.live, ("time", "body")), lr=config.actor_lr),
                   torch.optim.Adam(ref.parameters(ref.live, ("q1", "q2")), lr=config.critic_lr))
                  for ref, config in zip(references, configs)]
    for step in range(3):
        batch = sampler.draw(64)
        noise = agent.draw_noise(64)
        metrics = agent.update(batch, noise=noise)
        for k in range(members):
            critic_loss, bc_loss, q_loss = reference_update(references[k], optimizers[k], batch, noise, k, step,
                                                            configs[k])
            # float32 rounding differs in the order of a few products; the Q-loss is a ratio of means of
            # values of both signs, so its absolute error is the meaningful one (an algorithmic slip is ~0.1)
            assert math.isclose(metrics["critic_loss"][k].item(), critic_loss, rel_tol=1e-5)
            assert math.isclose(metrics["bc_loss"][k].item(), bc_loss, rel_tol=1e-5)
            assert math.isclose(metrics["q_loss"][k].item(), q_loss, rel_tol=1e-5, abs_tol=1e-4)
    for k, ref in enumerate(references):
        for network, nets in ((agent.actor, ref.live), (agent.ema_actor, ref.ema)):
            pairs = [(network.denoiser.time_mlp, nets["time"]), (network.denoiser.body, nets["body"])]
            critic = agent.critic if nets is ref.live else agent.critic_target
            pairs += [(critic.heads.q1, nets["q1"]), (critic.heads.q2, nets["q2"])]
            for mine, theirs in pairs:
                for layer, (weight, bias) in zip([m for m in mine if hasattr(m, "weight")], theirs):
                    assert_weights_match(layer.weight[k].T, weight)
                    assert_weights_match(layer.bias[k, 0], bias)
    # the EMA moved away from the initial weights and from the live ones, so the comparison is not vacuous
    assert not torch.equal(agent.ema_actor.denoiser.body[0].weight, agent.actor.denoiser.body[0].weight)


def test_a_member_does_not_depend_on_its_batch_mates():
    """Seed 7 alone, and seed 7 beside two other members with other settings: the same run."""
    data = dataset()
    runs = []
    for seeds, configs in (([7], [AgentConfig(history_len=3, n_step=3)]),
                           ([1, 7, 2], [AgentConfig(history_len=3, eta=0.0, max_q_backup=True),
                                        AgentConfig(history_len=3, n_step=3),
                                        AgentConfig(history_len=3, n_step=5, grad_norm=1.0)])):
        sampler = TrajectorySampler(data, configs, seeds)
        agent = DiffusionQLAgent(11, 3, 1.0, configs, 10, CPU, seeds)
        for _ in range(4):
            metrics = agent.update(sampler.draw(32))
        member = seeds.index(7)
        runs.append((metrics["critic_loss"][member], member_state(agent, member)))
    (loss_alone, alone), (loss_batched, batched) = runs
    torch.testing.assert_close(loss_alone, loss_batched, rtol=1e-6, atol=1e-6)
    for name in ("actor", "critic", "ema_actor", "critic_target"):
        for key, value in alone[name].items():
            torch.testing.assert_close(value, batched[name][key], rtol=1e-6, atol=1e-6)


def test_members_must_share_their_shapes():
    with pytest.raises(TrajdiffError, match="share hidden_dim"):
        DiffusionQLAgent(11, 3, 1.0, [AgentConfig(), AgentConfig(hidden_dim=64)], 10, CPU, [0, 1])


def test_terminal_targets_do_not_bootstrap():
    sampler = TrajectorySampler(EpisodeDataset.from_arrays(make_arrays([3], ["terminal"], 11, 3)),
                                [AgentConfig(history_len=2, n_step=5, discount=0.9)], [0])
    batch = sampler.windows(np.arange(3)[None])
    assert (batch.bootstrap_weight == 0).all()
    agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig(history_len=2, n_step=5)], 10, CPU, [0])
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["q_target_mean"][0], batch.target_reward.mean())


class FixedHeads(torch.nn.Module):
    """Stand-in Q heads returning hand-set values per row (K, rows, 1)."""

    def __init__(self, q1, q2):
        super().__init__()
        self.q1, self.q2 = q1, q2

    def forward(self, state, action):
        return self.q1, self.q2


def test_max_q_backup_takes_each_heads_max_then_the_min():
    """Member 0 with the max-Q backup, member 1 without, in one batch, with hand-set target Q values."""
    configs = [AgentConfig(max_q_backup=True, discount=0.5), AgentConfig(discount=0.5)]
    sampler = TrajectorySampler(dataset(), configs, [0, 1])
    agent = DiffusionQLAgent(11, 3, 1.0, configs, 10, CPU, [0, 1])
    batch = sampler.windows(np.array([[0, 1], [0, 1]]))  # steps 0 and 1: not terminal, discount 0.5
    repeats = 10
    q1 = torch.zeros(2, 2 * repeats, 1)
    q2 = torch.zeros(2, 2 * repeats, 1)
    # member 0, window 0: head 1 peaks at 5 (repeat 3), head 2 at 4 (repeat 9) -> min of maxima 4
    q1[0, 3], q2[0, 9] = 5.0, 4.0
    # member 0, window 1: maxima 2 and 7 -> 2
    q1[0, repeats + 1], q2[0, repeats + 5] = 2.0, 7.0
    # member 1 reads repeat 0 only: min(Q1, Q2) there is 1 and -3; larger values elsewhere are ignored
    q1[1, 0], q2[1, 0], q1[1, 4] = 1.0, 6.0, 100.0
    q1[1, repeats], q2[1, repeats] = -3.0, 8.0
    agent.critic_target.heads = FixedHeads(q1, q2)
    target = critic_target_value(agent.ema_actor, agent.critic_target, batch, agent.draw_noise(2).target_chain,
                                 agent.q_repeats)[..., 0]
    expected = batch.target_reward + 0.5 * torch.tensor([[4.0, 2.0], [1.0, -3.0]])
    torch.testing.assert_close(target, expected)


def test_action_selection_follows_the_critic():
    """Q = 1000 x (first action coordinate): the argmax and the softmax draw pick the same candidate."""
    agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig(history_len=2, action_candidates=4)] * 2, 10, CPU, [0, 1])
    candidates = torch.tensor([[0.1, 0.0, 0.0], [0.9, 1.0, 1.0], [-0.5, 2.0, 2.0], [0.3, 3.0, 3.0]])
    # member 0's environments see the candidates in this order, member 1's reversed
    fixed = torch.stack([candidates.repeat(5, 1), candidates.flip(0).repeat(5, 1)])  # (K, E * C, Da)
    agent.actor.sample = lambda context, noise: fixed

    class Heads(torch.nn.Module):
        def forward(self, state, action):
            return 1000 * action[..., :1], 1000 * action[..., :1] + 1

    agent.critic_target.heads = Heads()
    history, mask = torch.randn(2, 5, 2, 11), torch.ones(2, 5, 2, dtype=torch.bool)
    random = MemberRandom([0, 1], "evaluation-actions", CPU)
    for deterministic in (True, False):
        actions, values = agent.act(history, mask, random, deterministic)
        assert actions.shape == (2, 5, 1, 3) and values.shape == (2, 5)
        torch.testing.assert_close(actions, candidates[1].expand(2, 5, 1, 3))
        torch.testing.assert_close(values, torch.full((2, 5), 1000 * candidates[1, 0].item()))  # min of the heads


def test_equal_q_values_choose_uniformly():
    agent = DiffusionQLAgent(11, 3, 1.0, [AgentConfig(action_candidates=4)], 10, CPU, [0])
    candidates = torch.arange(4.0)[:, None].expand(4, 3)
    agent.actor.sample = lambda context, noise: candidates.repeat(200, 1)[None]
    agent.critic_target.heads = FixedHeads(torch.zeros(1, 800, 1), torch.zeros(1, 800, 1))
    random = MemberRandom([3], "evaluation-actions", CPU)
    chosen, _ = agent.act(torch.randn(1, 200, 1, 11), torch.ones(1, 200, 1, dtype=torch.bool), random)
    counts = np.bincount(chosen[0, :, 0, 0].long().numpy(), minlength=4)
    assert (counts > 25).all(), counts  # 50 expected each; a bias to one end would empty a bin


def test_actions_respect_bounds():
    agent = DiffusionQLAgent(11, 3, 0.4, [AgentConfig(history_len=3, action_candidates=7)], 10, CPU, [0])
    history, mask = torch.randn(1, 5, 3, 11), torch.ones(1, 5, 3, dtype=torch.bool)
    actions, _ = agent.act(history, mask, MemberRandom([0], "evaluation-actions", CPU))
    assert actions.shape == (1, 5, 1, 3) and actions.abs().max() <= 0.4


def test_critic_history_has_its_own_encoder_and_target():
    config = AgentConfig(history_len=4, n_step=2, critic_uses_history=True, history_hidden_dim=8, ema_start=10_000)
    sampler = TrajectorySampler(dataset(), [config], [0])
    agent = DiffusionQLAgent(11, 3, 1.0, [config], 10, CPU, [0])
    assert agent.critic.heads.q1[0].weight.shape[1] == 11 + 8 + 3
    assert agent.critic.encoder.gru is not agent.actor.encoder.gru
    target_gru = [p.clone() for p in agent.critic_target.encoder.parameters()]
    ema_gru = [p.clone() for p in agent.ema_actor.encoder.parameters()]
    agent.update(sampler.draw(16))
    # the critic's target encoder follows its own encoder by Polyak averaging from the first update...
    for before, after, live in zip(target_gru, agent.critic_target.encoder.parameters(),
                                   agent.critic.encoder.parameters()):
        torch.testing.assert_close(after, before + 0.005 * (live - before), rtol=1e-5, atol=1e-7)
    # ...while the EMA actor (before ema_start) keeps its initial weights
    for before, after in zip(ema_gru, agent.ema_actor.encoder.parameters()):
        assert torch.equal(before, after)


@pytest.mark.parametrize("decay, step, total, factor", [
    ("none", 123_456, 1000, 1.0),
    ("cosine", 0, 1000, 1.0), ("cosine", 500, 1000, 0.5), ("cosine", 1000, 1000, 0.0),
    ("cosine", 1500, 1000, 0.0),  # past the end: stays at 0, never climbs back
    ("diffusion-ql", 49_999, 10**6, 1.0),
    # the published scheduler has stepped 40 times (once per 50k updates) of T_max = 2000 after 2M updates
    ("diffusion-ql", 2_000_000, 10**6, 0.5 * (1 + math.cos(math.pi * 40 / 2000))),
])
def test_learning_rate_factor(decay, step, total, factor):
    period, horizon = decay_period_and_horizon(decay, total)
    value = learning_rate_factor(torch.tensor(step), torch.tensor([period]), torch.tensor([horizon]))
    assert value.item() == pytest.approx(factor, abs=1e-6)


class HandSetHeads(FixedHeads):
    """FixedHeads whose per-member head choice returns Q1 where ``first``, else Q2."""

    def head(self, state, action, first):
        return torch.where(first[:, None, None], self.q1, self.q2)


def test_critic_loss_known_answer():
    heads = HandSetHeads(torch.tensor([[[1.0], [2.0]], [[0.0], [0.0]]]),
                         torch.tensor([[[0.0], [4.0]], [[3.0], [-1.0]]]))
    target = torch.tensor([[[1.0], [1.0]], [[1.0], [2.0]]])
    loss, q1 = critic_loss(heads, None, None, target)
    # member 0: mean((1-1)^2, (2-1)^2) + mean((0-1)^2, (4-1)^2) = 0.5 + 5; member 1: (1 + 4) / 2 + (4 + 9) / 2
    torch.testing.assert_close(loss, torch.tensor([5.5, 9.0]))
    assert torch.equal(q1, heads.q1)


def test_q_loss_known_answer():
    """-E[Q_chosen] / |E[Q_other]|| per member, the coin choosing per member; no gradient through the normaliser."""
    q1 = torch.tensor([[[2.0], [4.0]], [[1.0], [1.0]]], requires_grad=True)
    q2 = torch.tensor([[[-1.0], [-3.0]], [[5.0], [3.0]]], requires_grad=True)
    loss = q_loss(HandSetHeads(q1, q2), None, None, torch.tensor([True, False]))
    # member 0 maximises Q1 (mean 3) over |Q2| (mean 2); member 1 maximises Q2 (mean 4) over |Q1| (mean 1)
    torch.testing.assert_close(loss, torch.tensor([-1.5, -4.0]))
    loss.sum().backward()
    torch.testing.assert_close(q1.grad, torch.tensor([[[-0.25], [-0.25]], [[0.0], [0.0]]]))  # -1 / (2 * 2)
    torch.testing.assert_close(q2.grad, torch.tensor([[[0.0], [0.0]], [[-0.5], [-0.5]]]))  # -1 / (2 * 1)


def test_target_updates_known_answer():
    """Polyak critic target every update; the EMA actor only on updates ema_start, +ema_every, ... ."""
    config = AgentConfig(ema_start=2, ema_every=2, ema_decay=0.9, tau=0.25)
    agent = DiffusionQLAgent(11, 3, 1.0, [config], 10, CPU, [0])
    with torch.no_grad():
        for network, value in ((agent.actor, 1.0), (agent.ema_actor, 0.0), (agent.critic, 1.0),
                               (agent.critic_target, 0.0)):
            for parameter in network.parameters():
                parameter.fill_(value)
    ema, target = [], []
    for step in range(5):
        agent.update_count.fill_(step)
        agent.update_targets()
        ema.append(next(agent.ema_actor.parameters()).flatten()[0].item())
        target.append(next(agent.critic_target.parameters()).flatten()[0].item())
    # EMA at updates 2 and 4: 0 -> 0.1 -> 0.19; Polyak: 1 - 0.75^(t+1)
    np.testing.assert_allclose(ema, [0.0, 0.0, 0.1, 0.1, 0.19], rtol=1e-6)
    np.testing.assert_allclose(target, [1 - 0.75 ** (t + 1) for t in range(5)], rtol=1e-6)


def test_members_may_differ_only_in_the_fields_declared_per_member():
    """One declaration (the fields' per_member metadata) decides what members may vary; everything else is shared."""
    per_member = {field.name for field in dataclasses.fields(AgentConfig)} - set(shared_values(AgentConfig()))
    assert per_member == {"n_step", "discount", "td_lambda", "eta", "actor_lr", "critic_lr", "grad_norm",
                          "max_q_backup", "lr_decay", "expertise_weighting", "expertise_floor"}
    check_member_configs([AgentConfig(), AgentConfig(eta=2.5, n_step=3, lr_decay="cosine", max_q_backup=True)])
    with pytest.raises(TrajdiffError, match="members of one batch must share hidden_dim"):
        check_member_configs([AgentConfig(), AgentConfig(hidden_dim=64)])
    assert "eta" not in shared_values(AgentConfig()) and shared_values(AgentConfig())["history_len"] == 1


class StateHeads(torch.nn.Module):
    """Stand-in Q heads that ignore the action: Q1 = s[0], Q2 = s[0] + 1, so V(s) = s[0]."""

    def forward(self, state, action):
        return state[..., :1], state[..., :1] + 1.0


def test_lambda_targets_match_the_recursion_through_the_agent():
    """Episodes with a terminal inside the window, a one-step episode and time-limit cuts; members with n 3 and
    (with the max-Q backup) n 2 in one batch. next_observations[i] = i + 0.5, so V of it is i + 0.5."""
    data = EpisodeDataset.from_arrays(make_arrays([4, 1, 6, 3], ["terminal", "timeout", "timeout", "terminal"], 11, 3))
    configs = [AgentConfig(n_step=3, critic_target="lambda", td_lambda=0.3, discount=0.9),
               AgentConfig(n_step=2, critic_target="lambda", td_lambda=0.7, discount=0.9, max_q_backup=True)]
    sampler = TrajectorySampler(data, configs, [0, 1])
    agent = DiffusionQLAgent(11, 3, 1.0, configs, 10, CPU, [0, 1])
    agent.critic_target.heads = StateHeads()
    size = data.num_transitions
    batch = sampler.windows(np.tile(np.arange(size), (2, 1)))
    target = critic_target_value(agent.ema_actor, agent.critic_target, batch, agent.draw_noise(size).target_chain,
                                 agent.q_repeats)[..., 0]
    values = np.arange(size) + 0.5
    for member, config in enumerate(configs):
        expected = lambda_return_by_recursion(data, config.n_step, 0.9, config.td_lambda, values)
        np.testing.assert_allclose(target[member].numpy(), expected, rtol=1e-5)


def test_chunk_members_update_and_their_bc_loss_leaves_out_steps_past_the_end():
    data = EpisodeDataset.from_arrays(make_arrays([4, 1, 6, 3], ["terminal", "timeout", "timeout", "terminal"], 11, 3))
    config = AgentConfig(n_step=3, action_chunk=3, history_len=2)
    sampler = TrajectorySampler(data, [config, config], [0, 1])
    agent = DiffusionQLAgent(11, 3, 1.0, [config, config], 10, CPU, [0, 1])
    batch = sampler.windows(np.tile(np.arange(data.num_transitions), (2, 1)))
    assert batch.actions.shape == (2, 14, 9) and not batch.action_mask.all()
    noise = agent.draw_noise(data.num_transitions)
    assert noise.bc_noise.shape == (2, 14, 9) and noise.target_chain.shape[-1] == 9
    features = agent.critic.features(batch.history, batch.history_mask).detach()
    _, bc, _ = actor_loss(agent.actor, agent.critic.heads, batch, features, noise, agent.eta, None)
    with torch.no_grad():  # by hand: each window's squared error over its held steps only
        policy = agent.actor.denoiser.condition(agent.actor.encoder(batch.history, batch.history_mask))
        noisy = agent.actor.schedule.q_sample(batch.actions, noise.bc_steps, noise.bc_noise)
        squared = ((policy(noisy, noise.bc_steps) - noise.bc_noise) ** 2).view(2, 14, 3, 3)
    expected = [np.mean([squared[k, b][batch.action_mask[k, b]].mean().item() for b in range(14)]) for k in range(2)]
    np.testing.assert_allclose(bc.detach().numpy(), expected, rtol=1e-5)
    metrics = agent.update(batch, noise=noise)
    assert all(torch.isfinite(value).all() for value in metrics.values())
