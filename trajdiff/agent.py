"""Trajectory-aware Diffusion-QL: the algorithm, top to bottom.

Diffusion-QL (Wang et al. 2022) trains a DDPM policy pi_theta(a | c) with
    L_actor = L_bc(theta) - eta * E[Q_phi(s, a ~ pi_theta)] / |E[Q_phi'(s, a ~ pi_theta)]|
and a double-Q critic regressed to target-network bootstraps. trajdiff changes three inputs:
the context c is a history encoding (``HistoryEncoder``), the critic target is the n-step return
of the sampled window, and L_bc may carry per-sample expertise weights. With history_len 1,
n_step 1 and no weights, :meth:`DiffusionQLAgent.update` is Diffusion-QL's update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from trajdiff.data.sampler import WindowBatch
from trajdiff.diffusion import NoiseSchedule, ddpm_sample, denoising_loss
from trajdiff.nets import Denoiser, HistoryEncoder, TwinCritic


@dataclass(frozen=True)
class AgentConfig:
    """Diffusion-QL hyperparameters (defaults: the paper's gym-locomotion settings)."""

    discount: float = 0.99
    """Per-step discount gamma."""
    tau: float = 0.005
    """Soft target-critic update rate."""
    eta: float = 1.0
    """Weight of the Q-loss in the actor loss."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (denoiser and history encoder)."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    grad_norm: float = 9.0
    """Gradient-norm clip for actor and critic (<= 0 disables)."""
    max_q_backup: bool = False
    """Bootstrap from the max over 10 sampled actions of each target head (Diffusion-QL's option)."""
    lr_decay: bool = False
    """Cosine learning-rate decay to 0 over the run."""
    diffusion_steps: int = 5
    """Denoising steps T."""
    beta_schedule: Literal["vp", "linear", "cosine"] = "vp"
    """Noise schedule."""
    hidden_dim: int = 256
    """Width of the denoiser and critic MLPs."""
    history_hidden_dim: int = 64
    """GRU hidden size of the history encoder (used when history_len > 1)."""
    history_layers: int = 1
    """GRU layers of the history encoder."""
    ema_decay: float = 0.995
    """EMA rate of the target actor."""
    ema_every: int = 5
    """Update the EMA actor every this many updates..."""
    ema_start: int = 1000
    """...from this update on; before, the EMA actor stays at its initial weights (as published)."""
    action_candidates: int = 50
    """Actions sampled per state at evaluation; one is picked by softmax (or argmax) over Q."""
    critic_uses_history: bool = False
    """Feed the critic the policy's history context instead of the Markov state alone."""


class Actor(nn.Module):
    """The policy: history encoder + denoiser, with the noise schedule as a constant buffer."""

    def __init__(self, observation_dim: int, action_dim: int, history_len: int, config: AgentConfig) -> None:
        super().__init__()
        self.encoder = HistoryEncoder(observation_dim, history_len, config.history_hidden_dim,
                                      config.history_layers)
        self.denoiser = Denoiser(action_dim, self.encoder.output_dim, config.diffusion_steps, config.hidden_dim)
        self.schedule = NoiseSchedule(config.beta_schedule, config.diffusion_steps)
        self.action_dim = action_dim

    def sample(
        self, context: torch.Tensor, max_action: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, C) -> (B, Da) actions by the reverse process."""
        return ddpm_sample(self.denoiser.condition(context), self.schedule, (context.shape[0], self.action_dim),
                           max_action, context.device, generator)


class DiffusionQLAgent:
    """Owns the actor, its EMA, the twin critic and its target, optimisers and randomness."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        max_action: float,
        history_len: int,
        config: AgentConfig,
        total_updates: int,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.max_action = max_action
        self.device = device
        self.actor = Actor(observation_dim, action_dim, history_len, config).to(device)
        self.ema_actor = copy.deepcopy(self.actor).requires_grad_(False)
        critic_input_dim = self.actor.encoder.output_dim if config.critic_uses_history else observation_dim
        self.critic = TwinCritic(critic_input_dim, action_dim, config.hidden_dim).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # foreach: one kernel per step over all parameters (PyTorch picks it by default on CUDA only)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr, foreach=True)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, foreach=True)
        self.schedulers = [
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_updates, 1), eta_min=0.0)
            for optimizer in (self.actor_optimizer, self.critic_optimizer)
        ] if config.lr_decay else []
        # Training noise comes from a generator of the agent's own (its state is checkpointed);
        # the choice of Q head for the actor's normaliser from a CPU one, so it never syncs a GPU.
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.coin = torch.Generator()
        self.coin.manual_seed(seed + 1)
        self.step = 0

    def update(self, batch: WindowBatch, sample_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One gradient step of critic then actor; returns detached scalar tensors.

        Shapes: batch of B windows; sample_weights (B,) or None (Diffusion-QL's unweighted loss).
        """
        config = self.config
        actions = batch.actions
        context = self.actor.encoder(batch.history, batch.history_mask)  # encoded once per update
        # the critic's input: the Markov state, or the (detached) history context when asked for
        state = context.detach() if config.critic_uses_history else batch.observations

        # Critic: y = R^(n) + gamma^k [not terminal] * min_j Q'_j(s_{t+k}, a'), a' ~ EMA actor
        with torch.no_grad():
            bootstrap_context = self.ema_actor.encoder(batch.bootstrap_history, batch.bootstrap_mask)
            bootstrap_state = bootstrap_context if config.critic_uses_history else batch.bootstrap_observations
            if config.max_q_backup:
                repeats = 10
                bootstrap_context = bootstrap_context.repeat_interleave(repeats, dim=0)
                bootstrap_state = bootstrap_state.repeat_interleave(repeats, dim=0)
            next_action = self.ema_actor.sample(bootstrap_context, self.max_action, self.generator)
            target_q1, target_q2 = self.critic_target(bootstrap_state, next_action)
            if config.max_q_backup:
                target_q1 = target_q1.view(-1, repeats).max(dim=1, keepdim=True).values
                target_q2 = target_q2.view(-1, repeats).max(dim=1, keepdim=True).values
            target_q = torch.minimum(target_q1, target_q2)
            target = batch.n_step_return[:, None] + batch.bootstrap_discount[:, None] * target_q
        current_q1, current_q2 = self.critic(state, actions)
        critic_loss = F.mse_loss(current_q1, target) + F.mse_loss(current_q2, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        if config.grad_norm > 0:
            nn.utils.clip_grad_norm_(self.critic.parameters(), config.grad_norm, foreach=True)
        self.critic_optimizer.step()

        # Actor: L_bc + eta * L_q, both from the one encoding of the history and one conditioning on it
        policy = self.actor.denoiser.condition(context)
        bc_loss = denoising_loss(policy, self.actor.schedule, actions, sample_weights, self.generator)
        new_action = ddpm_sample(policy, self.actor.schedule, actions.shape, self.max_action, actions.device,
                                 self.generator)
        q1_new, q2_new = self.critic(state, new_action)
        if torch.rand((), generator=self.coin) > 0.5:
            q_loss = -q1_new.mean() / q2_new.abs().mean().detach()
        else:
            q_loss = -q2_new.mean() / q1_new.abs().mean().detach()
        actor_loss = bc_loss + config.eta * q_loss
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_parameters = list(self.actor.parameters())
        actor_loss.backward(inputs=actor_parameters)  # the critic's gradients from L_q are not needed
        if config.grad_norm > 0:
            nn.utils.clip_grad_norm_(actor_parameters, config.grad_norm, foreach=True)
        self.actor_optimizer.step()

        # Targets: EMA actor every ema_every steps once past ema_start; Polyak critic every step
        if self.step % config.ema_every == 0 and self.step >= config.ema_start:
            _lerp_parameters(self.ema_actor, self.actor, 1.0 - config.ema_decay)
        _lerp_parameters(self.critic_target, self.critic, config.tau)
        for scheduler in self.schedulers:
            scheduler.step()
        self.step += 1
        return {
            "loss/critic": critic_loss.detach(),
            "loss/bc": bc_loss.detach(),
            "loss/q": q_loss.detach(),
            "loss/actor": actor_loss.detach(),
            "q/mean": current_q1.detach().mean(),
            "q/target_mean": target.mean(),
        }

    @torch.no_grad()
    def act(self, history: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> torch.Tensor:
        """Diffusion-QL's action selection for a batch of environments.

        Each state's ``action_candidates`` actions are drawn from the actor; one is picked with
        probability softmax(min-Q of the target critic), or the argmax when ``deterministic``.
        Shapes: history (E, H, Do), mask (E, H) -> (E, Da).
        """
        candidates = self.config.action_candidates
        context = self.actor.encoder(history, mask).repeat_interleave(candidates, dim=0)
        state = context if self.config.critic_uses_history else history[:, -1].repeat_interleave(candidates, dim=0)
        actions = self.actor.sample(context, self.max_action, generator)
        q = self.critic_target.q_min(state, actions).view(-1, candidates)  # (E, candidates)
        if deterministic:
            choice = q.argmax(dim=1)
        else:
            choice = torch.multinomial(F.softmax(q, dim=1), 1, generator=generator).squeeze(1)
        return actions.view(-1, candidates, actions.shape[-1])[torch.arange(len(choice)), choice]

    def state_dict(self) -> dict:
        """Everything needed to continue training bit-for-bit."""
        return {
            "actor": self.actor.state_dict(), "ema_actor": self.ema_actor.state_dict(),
            "critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "generator": self.generator.get_state(), "coin": self.coin.get_state(), "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "ema_actor", "critic", "critic_target", "actor_optimizer", "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        for scheduler, scheduler_state in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(scheduler_state)
        self.generator.set_state(state["generator"])
        self.coin.set_state(state["coin"])
        self.step = state["step"]


@torch.no_grad()
def _lerp_parameters(target: nn.Module, source: nn.Module, weight: float) -> None:
    """target <- (1 - weight) * target + weight * source, for every parameter."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), weight)
