"""Trajectory-aware Diffusion-QL for K members at once: the algorithm, top to bottom.

Diffusion-QL (Wang et al. 2022) trains a DDPM policy pi_theta(a | c) with
    L_actor = L_bc(theta) - eta * E[Q_phi(s, a ~ pi_theta)] / |E[Q_phi'(s, a ~ pi_theta)]|
and a double-Q critic regressed to target-network bootstraps. trajdiff changes three inputs:
the context c is a history encoding (``HistoryEncoder``), the critic target is the n-step return
of the sampled window, and L_bc may carry per-sample expertise weights. With history_len 1,
n_step 1 and no weights, each member's :meth:`DiffusionQLAgent.update` is Diffusion-QL's update.

Members. The agent trains K independent members (seeds, or settings that keep the shapes: eta,
learning rates, gradient clip, max-Q backup, n-step, discount, learning-rate decay, expertise
weighting). Every weight has a leading member dimension (trajdiff.nets.members), every loss is (K,),
and member k draws all its randomness from its own generators, so its run does not depend on which
members share the batch. The update is a function of (weights, batch, noise) with no host
synchronisation, so that on CUDA it can be captured whole in one graph (trajdiff.engine).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from trajdiff.data.sampler import WindowBatch
from trajdiff.diffusion import NoiseSchedule, ddpm_sample, denoising_loss
from trajdiff.errors import TrajdiffError, require
from trajdiff.nets import Denoiser, HistoryEncoder, TwinCritic
from trajdiff.utils import generator_state, restore_generator

LearningRateDecay = Literal["none", "cosine", "diffusion-ql"]

MAX_Q_REPEATS = 10
"""Actions sampled per next state by the max-Q backup (Diffusion-QL's value)."""


@dataclass(frozen=True)
class AgentConfig:
    """Everything that defines the algorithm (defaults: Diffusion-QL's gym-locomotion settings)."""

    history_len: int = 1
    """Observations in the policy's history window (1: Diffusion-QL's Markov policy)."""
    n_step: int = 1
    """Steps of real reward in the critic's target (1: Diffusion-QL's one-step TD)."""
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
    lr_decay: LearningRateDecay = "none"
    """Learning-rate decay: none; cosine to 0 over the run's --updates; or diffusion-ql, the published
    code's schedule (cosine over 2000 'epochs', stepped once per 50k updates: 0.1% lower after 2M)."""
    diffusion_steps: int = 5
    """Denoising steps T."""
    beta_schedule: Literal["vp", "linear", "cosine"] = "vp"
    """Noise schedule."""
    hidden_dim: int = 256
    """Width of the denoiser and critic MLPs."""
    history_encoder: Literal["gru", "frames"] = "gru"
    """How the window becomes a context: a GRU over it, or the frame-stack baseline (the H observations
    concatenated into the MLPs' input)."""
    history_hidden_dim: int = 64
    """GRU hidden size of the history encoders (used when history_len > 1)."""
    history_layers: int = 1
    """GRU layers of the history encoders."""
    ema_decay: float = 0.995
    """EMA rate of the target actor."""
    ema_every: int = 5
    """Update the EMA actor every this many updates..."""
    ema_start: int = 1000
    """...from this update on; before, the EMA actor stays at its initial weights (as published)."""
    action_candidates: int = 50
    """Actions sampled per state at evaluation; one is picked by softmax (or argmax) over Q."""
    critic_uses_history: bool = False
    """Give the critic a history encoder of its own (with its own target copy) instead of the Markov state."""

    def __post_init__(self) -> None:
        for name in ("history_len", "n_step", "diffusion_steps", "hidden_dim", "history_hidden_dim",
                     "history_layers", "ema_every", "action_candidates"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        for name in ("actor_lr", "critic_lr"):
            require(getattr(self, name) > 0, f"--{name.replace('_', '-')} must be positive")
        require(0 < self.discount <= 1, "--discount must be in (0, 1]")
        require(0 < self.tau <= 1, "--tau must be in (0, 1]")
        require(0 <= self.ema_decay < 1, "--ema-decay must be in [0, 1)")
        require(self.ema_start >= 0, "--ema-start must be at least 0")
        require(self.eta >= 0, "--eta must be at least 0")
        require(math.isfinite(self.grad_norm), "--grad-norm must be finite (<= 0 turns clipping off)")


MEMBER_FIELDS = ("n_step", "discount", "eta", "actor_lr", "critic_lr", "grad_norm", "max_q_backup", "lr_decay")
"""AgentConfig fields in which the members of one agent may differ; all others must be equal."""


def check_member_configs(configs: Sequence[AgentConfig]) -> None:
    """Raise unless the members agree on every field outside MEMBER_FIELDS (shapes, targets, EMA)."""
    for field in dataclasses.fields(AgentConfig):
        values = {getattr(config, field.name) for config in configs}
        if field.name not in MEMBER_FIELDS and len(values) > 1:
            raise TrajdiffError(f"members of one batch must share {field.name} (got {sorted(map(str, values))})")


def learning_rate_factor(step: torch.Tensor, period: torch.Tensor, horizon: torch.Tensor) -> torch.Tensor:
    """Cosine decay as a pure function of the update count.

    factor = 0.5 (1 + cos(pi min(floor(step / period), horizon) / horizon)):

    period 1 and horizon = total updates is cosine to 0 over the run; period 50k and horizon 2000 is the
    published code (its scheduler steps once per 50k-update training call with T_max = 2000 epochs);
    horizon inf is no decay. Shapes: step () float; period, horizon (K,) -> (K,).
    """
    epochs = torch.minimum(torch.floor(step / period), horizon)
    return 0.5 * (1.0 + torch.cos(math.pi * epochs / horizon))


def decay_period_and_horizon(decay: LearningRateDecay, total_updates: int) -> tuple[float, float]:
    """(period, horizon) of :func:`learning_rate_factor` for a decay setting."""
    return {"none": (1.0, math.inf), "cosine": (1.0, float(max(total_updates, 1))),
            "diffusion-ql": (50_000.0, 2000.0)}[decay]


class MemberRandom:
    """One generator per member on the agent's device; a draw of shape S returns (K, *S).

    Each member draws from its own generator only, so its stream does not depend on the others.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self.device = device

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        return stack_members([torch.randn(shape, generator=g, device=self.device) for g in self.generators])

    def integers(self, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return stack_members([torch.randint(high, shape, generator=g, device=self.device) for g in self.generators])

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return stack_members([torch.rand(shape, generator=g, device=self.device) for g in self.generators])


def stack_members(tensors: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """torch.stack, without a copy for one member."""
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else torch.stack(tensors, dim)


@dataclass(frozen=True)
class UpdateNoise:
    """Every random draw of one update. Shapes: T diffusion steps, K members, B batch, R max-Q repeats.

    target_chain (T, K, B, R, Da): the EMA actor's reverse chains for the bootstrap actions (entries
        past a member's own repeats are zero and unused); bc_steps (K, B) int64 and bc_noise (K, B, Da):
        the denoising loss's t and eps; policy_chain (T, K, B, Da): the actor's chain for the Q-loss;
        first_head (K,) bool: which Q head the actor maximises (the other normalises).
    """

    target_chain: torch.Tensor
    bc_steps: torch.Tensor
    bc_noise: torch.Tensor
    policy_chain: torch.Tensor
    first_head: torch.Tensor


class Actor(nn.Module):
    """The policy: history encoder + denoiser, with the noise schedule as a constant buffer."""

    def __init__(self, observation_dim: int, action_dim: int, config: AgentConfig,
                 generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.encoder = HistoryEncoder(observation_dim, config.history_len, config.history_hidden_dim,
                                      config.history_layers, generators, config.history_encoder)
        self.denoiser = Denoiser(action_dim, self.encoder.output_dim, config.diffusion_steps, config.hidden_dim,
                                 generators)
        self.schedule = NoiseSchedule(config.beta_schedule, config.diffusion_steps)

    def sample(self, context: torch.Tensor, noise: torch.Tensor, max_action: float) -> torch.Tensor:
        """(K, B, C) contexts and (T, K, B, Da) draws -> (K, B, Da) actions by the reverse process."""
        return ddpm_sample(self.denoiser.condition(context), self.schedule, noise, max_action)


class Critic(nn.Module):
    """Twin Q heads over [state, action]; the state is s_t, or [s_t, GRU(history)] from an encoder of its own."""

    def __init__(self, observation_dim: int, action_dim: int, config: AgentConfig,
                 generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.encoder = HistoryEncoder(observation_dim, config.history_len if config.critic_uses_history else 1,
                                      config.history_hidden_dim, config.history_layers, generators,
                                      config.history_encoder)
        self.heads = TwinCritic(self.encoder.output_dim, action_dim, config.hidden_dim, generators)

    def state(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(K, B, H, Do), (K, B, H) -> (K, B, Ds) the input the heads see (s_t without a history encoder)."""
        return self.encoder(history, mask)


class MemberAdam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) with a learning rate per member.

    The step count lives on the device, so the update needs no host value (CUDA-graph capturable).
    Parameters are (K, ...); lr is (K,).
    """

    def __init__(self, parameters: Sequence[nn.Parameter], device: torch.device,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameters = list(parameters)
        self.exp_avg = [torch.zeros_like(p) for p in self.parameters]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.parameters]
        self.step = torch.zeros((), device=device)
        self.betas, self.eps = betas, eps

    @torch.no_grad()
    def update(self, lr: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        grads = [p.grad for p in self.parameters]
        self.step += 1
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, value=1 - beta2)
        step_size = lr / (1 - beta1 ** self.step)  # (K,)
        denominators = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denominators, torch.sqrt(1 - beta2 ** self.step))
        torch._foreach_add_(denominators, self.eps)
        steps = torch._foreach_div(self.exp_avg, denominators)
        torch._foreach_mul_(steps, [step_size.view(-1, *[1] * (p.dim() - 1)) for p in self.parameters])
        torch._foreach_sub_(self.parameters, steps)

    def state_dict(self) -> dict:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        for mine, saved in ((self.exp_avg, state["exp_avg"]), (self.exp_avg_sq, state["exp_avg_sq"])):
            for tensor, value in zip(mine, saved):
                tensor.copy_(value)
        self.step.copy_(state["step"])


@torch.no_grad()
def clip_member_gradients(parameters: Sequence[nn.Parameter], max_norm: torch.Tensor) -> None:
    """clip_grad_norm_ for each member on its own: g_k *= min(1, max_norm_k / (||g_k|| + 1e-6)).

    ||g_k|| is the norm over all of member k's gradients; max_norm (K,) is inf where clipping is off.
    """
    norms = [torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in parameters]  # (K,) each
    norm = torch.linalg.vector_norm(torch.stack(norms), dim=0)
    coefficient = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_([p.grad for p in parameters], [coefficient.view(-1, *[1] * (p.dim() - 1))
                                                       for p in parameters])


def select_actions(actor: Actor, critic: Critic, history: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
                   uniform: torch.Tensor, candidates: int, max_action: float,
                   deterministic: bool = False) -> torch.Tensor:
    """Diffusion-QL's action selection, from given draws: ``candidates`` actions per state from the actor, one
    picked with probability softmax(min-Q of the critic) by the inverse CDF at ``uniform``, or the argmax.

    A pure function of its inputs (trajdiff.export hands it to torch.export). Shapes: history (K, E, H, Do),
    mask (K, E, H), noise (T, K, E * candidates, Da), uniform (K, E, 1) in [0, 1) -> (K, E, Da).
    """
    members, envs = history.shape[:2]
    context = actor.encoder(history, mask).repeat_interleave(candidates, dim=1)
    state = critic.state(history, mask).repeat_interleave(candidates, dim=1)
    actions = actor.sample(context, noise, max_action)  # (K, E * candidates, Da)
    q = torch.minimum(*critic.heads(state, actions)).view(members, envs, candidates)
    if deterministic:
        choice = q.argmax(dim=2)  # (K, E)
    else:
        cumulative = torch.softmax(q, dim=2).cumsum(dim=2)
        choice = (cumulative < uniform * cumulative[..., -1:]).sum(dim=2).clamp(max=candidates - 1)
    action_dim = actions.shape[-1]
    actions = actions.view(members, envs, candidates, action_dim)
    return torch.gather(actions, 2, choice[..., None, None].expand(-1, -1, 1, action_dim)).squeeze(2)


def step_optimizer(optimizer: MemberAdam, loss: torch.Tensor, max_norm: torch.Tensor, lr: torch.Tensor) -> None:
    """Gradients of the members' summed loss (K,) for the optimiser's parameters only, clipped per member, then
    one Adam step at each member's learning rate (K,)."""
    for parameter in optimizer.parameters:
        parameter.grad = None
    loss.sum().backward(inputs=optimizer.parameters)  # e.g. the critic's gradients from the actor's loss: unused
    clip_member_gradients(optimizer.parameters, max_norm)
    optimizer.update(lr)


@torch.no_grad()
def lerp_parameters(target: nn.Module, source: nn.Module, weight: torch.Tensor | float) -> None:
    """target <- target + weight * (source - target), for every parameter.

    A tensor weight () stays on the device (broadcast views, no host read), so the EMA's on/off gate
    needs no branch in a captured graph.
    """
    targets, sources = list(target.parameters()), list(source.parameters())
    if isinstance(weight, torch.Tensor):
        weight = [weight.expand_as(p) for p in targets]
    torch._foreach_lerp_(targets, sources, weight)


class DiffusionQLAgent:
    """K members: actors, EMA actors, twin critics and their targets, optimisers and randomness."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        max_action: float,
        configs: Sequence[AgentConfig],
        total_updates: int,
        device: torch.device,
        seeds: Sequence[int],
    ) -> None:
        if len(configs) != len(seeds) or not configs:
            raise ValueError("one AgentConfig and one seed per member")
        check_member_configs(configs)
        self.configs = list(configs)
        self.config = config = configs[0]  # the fields all members share
        self.members = len(configs)
        self.history_len = config.history_len
        self.max_action = max_action
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.device = device
        self.seeds = list(seeds)
        # initial weights from CPU generators of the members' seeds: the same on every device
        initial = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.actor = Actor(observation_dim, action_dim, config, initial).to(device)
        self.ema_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = Critic(observation_dim, action_dim, config, initial).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_optimizer = MemberAdam(list(self.actor.parameters()), device)
        self.critic_optimizer = MemberAdam(list(self.critic.parameters()), device)

        def per_member(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32, device=device)

        self.eta = per_member([c.eta for c in configs])
        self.actor_lr = per_member([c.actor_lr for c in configs])
        self.critic_lr = per_member([c.critic_lr for c in configs])
        self.grad_norm = per_member([c.grad_norm if c.grad_norm > 0 else math.inf for c in configs])
        self.set_total_updates(total_updates)
        self.q_repeats = torch.tensor([MAX_Q_REPEATS if c.max_q_backup else 1 for c in configs], device=device)
        self.max_q_repeats = MAX_Q_REPEATS if any(c.max_q_backup for c in configs) else 1
        self.random = MemberRandom([seed + 1 for seed in seeds], device)  # seed: the sampler's stream
        self.step_count = torch.zeros((), device=device)  # updates done, on the device (see learning_rate_factor)

    def set_total_updates(self, total_updates: int) -> None:
        """The run's length, which the cosine decay spans (it may grow when a run is resumed)."""
        schedule = [decay_period_and_horizon(c.lr_decay, total_updates) for c in self.configs]
        self.decay_period = torch.tensor([p for p, _ in schedule], device=self.device)
        self.decay_horizon = torch.tensor([h for _, h in schedule], device=self.device)

    @property
    def step(self) -> int:
        """Updates done (a host read of the device counter: not for the training loop's hot path)."""
        return int(self.step_count.item())

    def draw_noise(self, batch_size: int) -> UpdateNoise:
        """Every random draw of one update, member by member from its own generators (see UpdateNoise)."""
        steps, da, repeats = self.config.diffusion_steps, self.action_dim, self.max_q_repeats
        target_chains = []
        for k, generator in enumerate(self.random.generators):
            own = MAX_Q_REPEATS if self.configs[k].max_q_backup else 1  # a member alone draws the same numbers
            chain = torch.randn((steps, batch_size, own, da), generator=generator, device=self.device)
            target_chains.append(chain if own == repeats else nn.functional.pad(chain, (0, 0, 0, repeats - own)))
        return UpdateNoise(
            target_chain=stack_members(target_chains, dim=1),
            bc_steps=self.random.integers(steps, (batch_size,)),
            bc_noise=self.random.normal((batch_size, da)),
            policy_chain=self.random.normal((steps, batch_size, da)).transpose(0, 1),
            first_head=self.random.uniform(()) > 0.5,
        )

    def critic_target_value(self, batch: WindowBatch, noise: UpdateNoise) -> torch.Tensor:
        """y = R^(n) + gamma^k [not terminal] min_j Q'_j(s_{t+k}, a'), a' ~ EMA actor; (K, B, 1).

        With the max-Q backup, each head first takes its max over 10 sampled a' (per member).
        """
        members, batch_size = batch.actions.shape[:2]
        repeats = self.max_q_repeats
        context = self.ema_actor.encoder(batch.bootstrap_history, batch.bootstrap_mask)
        state = self.critic_target.state(batch.bootstrap_history, batch.bootstrap_mask)
        if repeats > 1:  # row b * R + j is repeat j of window b
            context = context.repeat_interleave(repeats, dim=1)
            state = state.repeat_interleave(repeats, dim=1)
        chain = noise.target_chain.reshape(-1, members, batch_size * repeats, self.action_dim)
        next_action = self.ema_actor.sample(context, chain, self.max_action)
        target_q1, target_q2 = self.critic_target.heads(state, next_action)
        if repeats > 1:
            valid = torch.arange(repeats, device=self.device) < self.q_repeats[:, None, None]  # (K, 1, R)
            target_q1 = target_q1.view(members, batch_size, repeats).masked_fill(~valid, -math.inf)
            target_q2 = target_q2.view(members, batch_size, repeats).masked_fill(~valid, -math.inf)
            target_q1 = target_q1.amax(dim=2, keepdim=True)
            target_q2 = target_q2.amax(dim=2, keepdim=True)
        target_q = torch.minimum(target_q1, target_q2)
        return batch.n_step_return[..., None] + batch.bootstrap_discount[..., None] * target_q

    def update(self, batch: WindowBatch, sample_weights: torch.Tensor | None = None,
               noise: UpdateNoise | None = None) -> dict[str, torch.Tensor]:
        """One gradient step of critic then actor for every member; returns (K,) detached metrics.

        Shapes: batch of K x B windows; sample_weights (K, B) or None (Diffusion-QL's unweighted loss);
        noise: this update's draws (drawn from the members' generators when None).
        """
        if noise is None:
            noise = self.draw_noise(batch.actions.shape[1])
        actions = batch.actions
        lr_factor = learning_rate_factor(self.step_count, self.decay_period, self.decay_horizon)

        # Critic: regress both heads to the target (losses are (K,); their sum keeps members apart)
        with torch.no_grad():
            target = self.critic_target_value(batch, noise)
        critic_state = self.critic.state(batch.history, batch.history_mask)
        critic_loss, current_q1 = self.critic_loss(critic_state, actions, target)
        step_optimizer(self.critic_optimizer, critic_loss, self.grad_norm, self.critic_lr * lr_factor)

        # Actor: L_bc + eta * L_q, both from one encoding of the history and one conditioning on it
        context = self.actor.encoder(batch.history, batch.history_mask)
        policy = self.actor.denoiser.condition(context)
        bc_loss = denoising_loss(policy, self.actor.schedule, actions, noise.bc_steps, noise.bc_noise, sample_weights)
        new_action = ddpm_sample(policy, self.actor.schedule, noise.policy_chain, self.max_action)
        if self.critic.encoder.gru is not None:  # the critic's own encoder moved in the critic step
            with torch.no_grad():
                critic_state = self.critic.state(batch.history, batch.history_mask)
        q_loss = self.q_loss(critic_state.detach(), new_action, noise.first_head)
        actor_loss = bc_loss + self.eta * q_loss
        step_optimizer(self.actor_optimizer, actor_loss, self.grad_norm, self.actor_lr * lr_factor)

        self.update_targets()
        self.step_count += 1
        return {
            "loss/critic": critic_loss.detach(),
            "loss/bc": bc_loss.detach(),
            "loss/q": q_loss.detach(),
            "loss/actor": actor_loss.detach(),
            "q/mean": current_q1.detach().mean(dim=(1, 2)),
            "q/target_mean": target.mean(dim=(1, 2)),
            "lr/actor": self.actor_lr * lr_factor,
        }

    def critic_loss(self, state: torch.Tensor, actions: torch.Tensor,
                    target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sum_j mean_b (Q_j(s, a) - y)^2 per member, and Q1. Shapes: target (K, B, 1) -> (K,), (K, B, 1)."""
        current_q1, current_q2 = self.critic.heads(state, actions)
        loss = (current_q1 - target).square().mean(dim=(1, 2)) + (current_q2 - target).square().mean(dim=(1, 2))
        return loss, current_q1

    def q_loss(self, state: torch.Tensor, new_action: torch.Tensor, first_head: torch.Tensor) -> torch.Tensor:
        """Diffusion-QL's Q-term: -E[Q_i(s, a~pi)] / |E[Q_j(s, a~pi)]|, i the head a coin picked, j the other.

        The normaliser only scales (no gradient flows through it). Shapes: first_head (K,) bool -> (K,).
        """
        maximised = self.critic.heads.head(state, new_action, first_head)
        with torch.no_grad():
            normaliser = self.critic.heads.head(state, new_action, ~first_head)
        return -maximised.mean(dim=(1, 2)) / normaliser.abs().mean(dim=(1, 2))

    def update_targets(self) -> None:
        """EMA actor every ema_every updates once past ema_start; Polyak critic target every update.

        The EMA's condition is a weight of 0 or 1 - decay on the device: no host branch.
        """
        config, step = self.config, self.step_count
        ema_due = (step >= config.ema_start) & (torch.remainder(step, config.ema_every) == 0)
        lerp_parameters(self.ema_actor, self.actor, ema_due * (1.0 - config.ema_decay))
        lerp_parameters(self.critic_target, self.critic, config.tau)

    @torch.no_grad()
    def act(self, history: torch.Tensor, mask: torch.Tensor, random: MemberRandom,
            deterministic: bool = False) -> torch.Tensor:
        """Diffusion-QL's action selection for a batch of environments per member (see :func:`select_actions`).

        Shapes: history (K, E, H, Do), mask (K, E, H) -> (K, E, Da).
        """
        envs, candidates = history.shape[1], self.config.action_candidates
        noise = random.normal((self.config.diffusion_steps, envs * candidates, self.action_dim)).transpose(0, 1)
        uniform = random.uniform((envs, 1))
        return select_actions(self.actor, self.critic_target, history, mask, noise, uniform, candidates,
                              self.max_action, deterministic)

    def nonfinite_members(self) -> list[int]:
        """Members with a NaN or infinite weight in any network (one host read)."""
        finite = torch.stack([torch.isfinite(p).flatten(1).all(dim=1) for module in
                              (self.actor, self.ema_actor, self.critic, self.critic_target)
                              for p in module.parameters()]).all(dim=0)  # (K,)
        return (~finite).nonzero().flatten().tolist()

    # -- checkpoints: one member's slice of every tensor, so that each member's folder is a run of its own --

    def member_state_dict(self, member: int) -> dict:
        """Everything needed to continue member ``member`` bit-for-bit, as a one-member agent's state."""
        def slice_module(module: nn.Module) -> dict:
            return {name: tensor[member:member + 1].clone() for name, tensor in module.state_dict().items()}

        def slice_optimizer(optimizer: MemberAdam) -> dict:
            return {"exp_avg": [t[member:member + 1].clone() for t in optimizer.exp_avg],
                    "exp_avg_sq": [t[member:member + 1].clone() for t in optimizer.exp_avg_sq],
                    "step": optimizer.step.cpu()}

        return {
            "actor": slice_module(self.actor), "ema_actor": slice_module(self.ema_actor),
            "critic": slice_module(self.critic), "critic_target": slice_module(self.critic_target),
            "actor_optimizer": slice_optimizer(self.actor_optimizer),
            "critic_optimizer": slice_optimizer(self.critic_optimizer),
            "generator": generator_state(self.random.generators[member]),
            "step": self.step,
        }

    def load_member_state_dicts(self, states: Sequence[dict]) -> list[str]:
        """Load one saved member state per member (from :meth:`member_state_dict`).

        Weights and optimiser moments go to this agent's device. A generator state saved on another
        device type cannot be restored here: that member's stream starts afresh from its seed, and the
        returned messages say so (bitwise continuation holds on the device type the run was written on).
        """
        if len(states) != self.members:
            raise ValueError(f"{len(states)} saved members for an agent of {self.members}")
        for name in ("actor", "ema_actor", "critic", "critic_target"):
            module = getattr(self, name)
            stacked = {key: torch.cat([state[name][key] for state in states]) for key in states[0][name]}
            module.load_state_dict(stacked)
        for name in ("actor_optimizer", "critic_optimizer"):
            optimizer: MemberAdam = getattr(self, name)
            optimizer.load_state_dict({
                key: [torch.cat(parts) for parts in zip(*(state[name][key] for state in states))]
                for key in ("exp_avg", "exp_avg_sq")} | {"step": states[0][name]["step"]})
        messages = []
        for member, (state, generator) in enumerate(zip(states, self.random.generators)):
            if not restore_generator(generator, state["generator"], self.seeds[member] + 1 + state["step"]):
                messages.append(f"member {member}: random streams saved on {state['generator']['device']} start "
                                f"afresh on {generator.device.type}")
        self.step_count.fill_(states[0]["step"])
        return messages
