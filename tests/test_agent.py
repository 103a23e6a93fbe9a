"""The agent against a reference Diffusion-QL update written out from the paper's equations."""

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from tests.conftest import make_arrays
from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.data import EpisodeDataset, TrajectorySampler


def reference_update(nets, optimizers, batch, generator, coin, step, config, max_action=1.0):
    """One Diffusion-QL update (Wang et al. 2022, Algorithm 1) with explicit DDPM maths."""
    denoiser, ema_denoiser, critic, critic_target = nets
    actor_optimizer, critic_optimizer = optimizers
    steps = config.diffusion_steps
    t_index = torch.arange(1, steps + 1, dtype=torch.float64)
    betas = (1 - torch.exp(-0.1 / steps - 0.5 * 9.9 * (2 * t_index - 1) / steps**2)).float()
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1), abar[:-1]])

    def sample(network, state):
        x = torch.randn(state.shape[0], 3, generator=generator)
        for i in reversed(range(steps)):
            eps = network(x, torch.full((state.shape[0],), i), state)
            x0 = (x / abar[i].sqrt() - (1 / abar[i] - 1).sqrt() * eps).clamp(-max_action, max_action)
            mean = (betas[i] * abar_prev[i].sqrt() / (1 - abar[i])) * x0 \
                + ((1 - abar_prev[i]) * alphas[i].sqrt() / (1 - abar[i])) * x
            if i > 0:
                variance = betas[i] * (1 - abar_prev[i]) / (1 - abar[i])
                x = mean + variance.sqrt() * torch.randn(x.shape, generator=generator)
            else:
                x = mean
        return x.clamp(-max_action, max_action)

    s, a, r = batch.observations, batch.actions, batch.n_step_return[:, None]
    s_next, not_done_discount = batch.bootstrap_observations, batch.bootstrap_discount[:, None]
    with torch.no_grad():
        a_next = sample(ema_denoiser, s_next)
        target_q1, target_q2 = critic_target(s_next, a_next)
        y = r + not_done_discount * torch.minimum(target_q1, target_q2)
    q1, q2 = critic(s, a)
    critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
    critic_optimizer.zero_grad()
    critic_loss.backward()
    torch.nn.utils.clip_grad_norm_(critic.parameters(), config.grad_norm)
    critic_optimizer.step()

    t = torch.randint(0, steps, (s.shape[0],), generator=generator)
    noise = torch.randn(a.shape, generator=generator)
    x_t = abar[t, None].sqrt() * a + (1 - abar[t, None]).sqrt() * noise
    bc_loss = ((denoiser(x_t, t, s) - noise) ** 2).mean()
    q1_new, q2_new = critic(s, sample(denoiser, s))
    if torch.rand((), generator=coin) > 0.5:
        q_loss = -q1_new.mean() / q2_new.abs().mean().detach()
    else:
        q_loss = -q2_new.mean() / q1_new.abs().mean().detach()
    actor_optimizer.zero_grad()
    (bc_loss + config.eta * q_loss).backward()
    torch.nn.utils.clip_grad_norm_(denoiser.parameters(), config.grad_norm)
    actor_optimizer.step()
    with torch.no_grad():
        if step % config.ema_every == 0 and step >= config.ema_start:
            for ema, live in zip(ema_denoiser.parameters(), denoiser.parameters()):
                ema.copy_(config.ema_decay * ema + (1 - config.ema_decay) * live)
        for target, live in zip(critic_target.parameters(), critic.parameters()):
            target.copy_((1 - config.tau) * target + config.tau * live)
    return critic_loss.item(), bc_loss.item(), q_loss.item()


def test_one_step_update_equals_reference_diffusion_ql():
    torch.manual_seed(0)
    dataset = EpisodeDataset.from_arrays(make_arrays([30, 20], ["terminal", "timeout"], 11, 3))
    sampler = TrajectorySampler(dataset, history_len=1, n_step=1, discount=0.99, seed=0)
    config = AgentConfig(ema_start=0, ema_every=2, grad_norm=1.0)  # exercise EMA and clipping at once
    agent = DiffusionQLAgent(11, 3, 1.0, 1, config, 10, torch.device("cpu"), seed=5)
    nets = [copy.deepcopy(agent.actor.denoiser), copy.deepcopy(agent.ema_actor.denoiser),
            copy.deepcopy(agent.critic), copy.deepcopy(agent.critic_target)]
    optimizers = (torch.optim.Adam(nets[0].parameters(), lr=config.actor_lr),
                  torch.optim.Adam(nets[2].parameters(), lr=config.critic_lr))
    generator, coin = torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)
    for step in range(3):
        batch = sampler.sample(64)
        metrics = agent.update(batch)
        critic_loss, bc_loss, q_loss = reference_update(nets, optimizers, batch, generator, coin, step, config)
        assert math.isclose(metrics["loss/critic"].item(), critic_loss, rel_tol=1e-5)
        assert math.isclose(metrics["loss/bc"].item(), bc_loss, rel_tol=1e-5)
        assert math.isclose(metrics["loss/q"].item(), q_loss, rel_tol=1e-5)
    for mine, theirs in zip([agent.actor.denoiser, agent.ema_actor.denoiser, agent.critic, agent.critic_target], nets):
        for p, q in zip(mine.parameters(), theirs.parameters()):
            # Adam divides by sqrt(v): float rounding of near-zero gradients can move a weight by
            # ~1e-6, while any algorithmic difference moves weights on the scale of lr = 3e-4
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-5)
    # the reference moved away from the initial weights, so the comparison is not vacuous
    assert not torch.equal(agent.ema_actor.denoiser.body[0].weight, agent.actor.denoiser.body[0].weight)


def test_terminal_targets_do_not_bootstrap():
    dataset = EpisodeDataset.from_arrays(make_arrays([3], ["terminal"], 11, 3))
    sampler = TrajectorySampler(dataset, history_len=2, n_step=5, discount=0.9)
    batch = sampler.windows(np.arange(3))
    assert (batch.bootstrap_discount == 0).all()
    agent = DiffusionQLAgent(11, 3, 1.0, 2, AgentConfig(), 10, torch.device("cpu"))
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["q/target_mean"], batch.n_step_return.mean())


def test_actions_respect_bounds_and_shapes():
    agent = DiffusionQLAgent(11, 3, 0.4, 3, AgentConfig(action_candidates=7), 10, torch.device("cpu"))
    history, mask = torch.randn(5, 3, 11), torch.ones(5, 3, dtype=torch.bool)
    actions = agent.act(history, mask, torch.Generator().manual_seed(0))
    assert actions.shape == (5, 3) and actions.abs().max() <= 0.4
    greedy = agent.act(history, mask, torch.Generator().manual_seed(0), deterministic=True)
    assert greedy.shape == (5, 3)


def test_critic_can_take_the_history_context():
    dataset = EpisodeDataset.from_arrays(make_arrays([30, 20], ["terminal", "timeout"], 11, 3))
    sampler = TrajectorySampler(dataset, history_len=4, n_step=2, discount=0.99)
    config = AgentConfig(critic_uses_history=True, history_hidden_dim=8)
    agent = DiffusionQLAgent(11, 3, 1.0, 4, config, 10, torch.device("cpu"))
    assert agent.critic.q1[0].in_features == 11 + 8 + 3
    metrics = agent.update(sampler.sample(16))
    assert torch.isfinite(metrics["loss/critic"])
    batch = sampler.sample(2)
    assert agent.act(batch.history, batch.history_mask).shape == (2, 3)
