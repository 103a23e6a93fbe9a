"""Trajectory-aware Diffusion-QL for K members at once: the algorithm, top to bottom.

Diffusion-QL (Wang et al. 2022) trains a DDPM policy pi_theta(a | c) with
    L_actor = L_bc(theta) - eta * E[Q_phi(s, a ~ pi_theta)] / |E[Q_phi'(s, a ~ pi_theta)]|
and a double-Q critic regressed to target-network bootstraps. trajdiff changes what they read:
the context c is a history encoding (``HistoryEncoder``), the critic target is the n-step return
of the sampled window or its truncated lambda-return, the action may be a chunk of h actions that the critic
scores whole and evaluation runs open-loop, and L_bc may carry per-sample expertise weights. With history_len 1,
n_step 1, action_chunk 1 and no weights, each member's :meth:`DiffusionQLAgent.update` is Diffusion-QL's update.

The losses are the short functions :func:`critic_target_value`, :func:`critic_loss`, :func:`q_loss` and
:func:`actor_loss`; the per-member optimiser is trajdiff.optim, the random streams trajdiff.streams, and
the checkpoint slicing trajdiff.agent_state.

Members. The agent trains K independent members (seeds, or settings that keep the shapes: eta,
learning rates, gradient clip, max-Q backup, n-step, discount, lambda, learning-rate decay, expertise
weighting). Every weight has a leading member dimension (trajdiff.nets.members), every loss is (K,),
and member k draws all its randomness from its own streams, so its run does not depend on which
members share the batch. The update is a function of (weights, batch, noise) with no host
synchronisation, so that on CUDA it can be captured whole in one graph (trajdiff.engine).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from trajdiff.data.sampler import WindowBatch
from trajdiff.devices import GraphInputs
from trajdiff.diffusion import NoiseSchedule, ddpm_sample, noise_prediction, one_step_actions, prediction_error
from trajdiff.errors import TrajdiffError, require
from trajdiff.expertise import Evidence
from trajdiff.nets import Denoiser, HistoryEncoder, TwinCritic
from trajdiff.optim import (
    LearningRateDecay,
    MemberAdam,
    apply_gradients,
    decay_period_and_horizon,
    learning_rate_factor,
    lerp_parameters,
)
from trajdiff.streams import MemberRandom, stack_members, stream_generator

MAX_Q_REPEATS = 10
"""Actions sampled per next state by the max-Q backup (Diffusion-QL's value)."""
NETWORKS = ("actor", "ema_actor", "critic", "critic_target")
OPTIMIZERS = ("actor_optimizer", "critic_optimizer")


def state_leaves(tree: Any) -> list[torch.Tensor]:
    """The tensors of a state tree (nested dicts and lists, as :meth:`DiffusionQLAgent.state_dict`), in order."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    values = tree.values() if isinstance(tree, dict) else tree
    return [leaf for value in values for leaf in state_leaves(value)]


def declared(default: Any = dataclasses.MISSING, *, per_member: bool = False, resumable: bool = False,
             default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field with what it may do, declared once in its metadata: differ between the members of one
    batch (``per_member``: a value, not a shape; read by :func:`shared_values`), change when a run is resumed
    (``resumable``: read by trajdiff.commands.train_config.check_resumable)."""
    metadata = {name: True for name, flag in (("per_member", per_member), ("resumable", resumable)) if flag}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def shared_values(config: Any) -> dict[str, Any]:
    """A config's values that every member of one batch must share: all but its per-member fields."""
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
            if not field.metadata.get("per_member")}


@dataclass(frozen=True)
class AgentConfig:
    """Everything that defines the algorithm (defaults: Diffusion-QL's gym-locomotion settings).

    Per member, with c_t the encoding of the last ``history_len`` observations, w(tau) = floor + (1 - floor)
    p(expert | tau) the window's episode weight (1 without expertise weighting), k = ``n_step`` or the steps left
    in the episode if fewer, A_t the action a_t, or with ``action_chunk`` h the chunk a_{t:t+h} (n_step = h):
        critic:  sum_j E[(Q_j(s_t, A_t) - y)^2],
                 y = sum_{i<k} gamma^i r_{t+i} + gamma^k [the episode did not terminate] V'(s_{t+k})   (nstep),
                 y_t = r_t + gamma [(1 - lambda) V'(s_{t+1}) + lambda y_{t+1}], y_{t+k} = V'(s_{t+k})   (lambda),
                 V'(s) = min_j Q'_j(s, A'), A' ~ the EMA actor at c (the max over 10 draws per head with
                 ``max_q_backup``);
        actor:   E[w(tau) ||eps - eps_theta(A_t^k, k, c_t)||^2] - eta E[Q_i(s_t, A)] / |E[Q_j(s_t, A)]|,
                 A ~ pi_theta(. | c_t), i a random head and j the other; with chunks the BC error is averaged over
                 the chunk's steps that the episode holds.
    A chunk that a terminal cuts bootstraps nothing after it; one cut by a time limit (or the data's end)
    bootstraps from the state where the episode was cut; the chunk's actions past the cut are the episode's
    last one repeated, and the BC loss leaves them out.
    Fields declared per-member may differ between the members of one batched agent; all others are shared
    shapes and settings (check_member_configs)."""

    history_len: int = 1
    """Observations in the policy's history window (1: Diffusion-QL's Markov policy)."""
    n_step: int = declared(1, per_member=True)
    """Steps of real reward in the critic's target (1: Diffusion-QL's one-step TD); with action chunks, h."""
    critic_target: Literal["nstep", "lambda"] = "nstep"
    """The critic's multi-step target: the n-step return, or the truncated lambda-return over the same n steps
    (Peng's Q(lambda)), which values each of the n next states with the policy's own action."""
    td_lambda: float = declared(0.5, per_member=True)
    """lambda of the lambda-return (1: the n-step return; 0: the one-step target)."""
    action_chunk: int = 1
    """Actions the policy generates at once (h); the critic scores the whole chunk, evaluation runs it open-loop
    (1: Diffusion-QL's single action). Needs n_step = h."""
    discount: float = declared(0.99, per_member=True)
    """Per-step discount gamma."""
    tau: float = 0.005
    """Soft target-critic update rate."""
    eta: float = declared(1.0, per_member=True)
    """Weight of the Q-loss in the actor loss."""
    actor_lr: float = declared(3e-4, per_member=True)
    """Adam learning rate of the actor (denoiser and history encoder)."""
    critic_lr: float = declared(3e-4, per_member=True)
    """Adam learning rate of the critic."""
    grad_norm: float = declared(9.0, per_member=True)
    """Gradient-norm clip for actor and critic (<= 0 disables)."""
    max_q_backup: bool = declared(False, per_member=True)
    """Bootstrap from the max over 10 sampled actions of each target head (Diffusion-QL's option)."""
    lr_decay: LearningRateDecay = declared("none", per_member=True)
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
    q_action: Literal["sampled", "approximated"] = "sampled"
    """The action the Q-term scores: sampled through the whole reverse chain with gradients (Diffusion-QL), or
    approximated in one step from the BC loss's noised data action (Efficient Diffusion Policies, Kang et al.
    2023): no reverse chain in the actor's update."""
    expertise_weighting: bool = declared(False, per_member=True)
    """Weight the BC loss by each window's p(expert | episode) (see trajdiff.expertise)."""
    expertise_floor: float = declared(0.1, per_member=True)
    """Weight of a surely non-expert window relative to a surely expert one."""
    expertise_components: int = 3
    """Most mixture components the expertise model may select (by BIC)."""
    expertise_evidence: Evidence = "early-reward"
    """Per-episode evidence the expertise model fits: mean reward over the first steps, or the return."""
    expertise_early_steps: int = 50
    """Steps from each episode's start that the early-reward evidence averages over."""

    def __post_init__(self) -> None:
        for name in ("history_len", "n_step", "action_chunk", "diffusion_steps", "hidden_dim", "history_hidden_dim",
                     "history_layers", "ema_every", "action_candidates", "expertise_components",
                     "expertise_early_steps"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        for name in ("actor_lr", "critic_lr"):
            value = getattr(self, name)
            require(value > 0 and math.isfinite(value), f"--{name.replace('_', '-')} must be positive and finite")
        require(0 < self.discount <= 1, "--discount must be in (0, 1]")
        require(0 < self.tau <= 1, "--tau must be in (0, 1]")
        require(0 <= self.ema_decay < 1, "--ema-decay must be in [0, 1)")
        require(self.ema_start >= 0, "--ema-start must be at least 0")
        require(self.eta >= 0, "--eta must be at least 0")
        require(math.isfinite(self.grad_norm), "--grad-norm must be finite (<= 0 turns clipping off)")
        require(0.0 < self.expertise_floor <= 1.0, "--expertise-floor must be in (0, 1]")
        self._check_multi_step()

    @property
    def bootstrap_states(self) -> int:
        """Next states the critic's target values: each of the n for lambda-returns, the last one for n-step."""
        return self.n_step if self.critic_target == "lambda" else 1

    def _check_multi_step(self) -> None:
        require(0.0 <= self.td_lambda <= 1.0, "--td-lambda must be in [0, 1]")
        if self.critic_target == "lambda":
            require(self.n_step > 1, "--critic-target lambda needs --n-step above 1 (over one step it is the "
                    "one-step target)")
            require(self.action_chunk == 1, "--critic-target lambda with --action-chunk is not supported: a chunk's "
                    "target backs up the whole logged chunk, with no state inside it to bootstrap from")
        else:
            require(self.td_lambda == AgentConfig.td_lambda,
                    "--td-lambda applies to --critic-target lambda only")
        require(self.action_chunk == 1 or self.n_step == self.action_chunk,
                f"--action-chunk {self.action_chunk} needs --n-step {self.action_chunk}: the critic backs up "
                "exactly the chunk's logged steps")


def check_member_configs(configs: Sequence[AgentConfig]) -> None:
    """Raise unless the members agree on every field not declared per-member (shapes, targets, EMA)."""
    shared = [shared_values(config) for config in configs]
    for name in shared[0]:
        values = {values[name] for values in shared}
        if len(values) > 1:
            raise TrajdiffError(f"members of one batch must share {name} (got {sorted(map(str, values))})")


@dataclass(frozen=True)
class UpdateNoise:
    """Every random draw of one update. Shapes: T diffusion steps, K members, B batch, J bootstrap states, R max-Q
    repeats, A = action_chunk x action size.

    target_chain (T, K, B, J, R, A): the EMA actor's reverse chains for the bootstrap actions (entries
        past a member's own states and repeats are zero and unused); bc_steps (K, B) int64 and bc_noise (K, B, A):
        the denoising loss's diffusion steps and eps; policy_chain (T, K, B, A): the actor's chain for the
        Q-loss; first_head (K,) bool: which Q head the actor maximises (the other normalises).
    """

    target_chain: torch.Tensor
    bc_steps: torch.Tensor
    bc_noise: torch.Tensor
    policy_chain: torch.Tensor
    first_head: torch.Tensor


class Actor(nn.Module):
    """The policy: history encoder + denoiser of chunks of ``action_chunk`` actions (flattened, step-major), with the
    noise schedule as a constant buffer and the action bound (actions lie in [-max_action, max_action]) as a
    constant."""

    def __init__(self, observation_dim: int, action_dim: int, max_action: float, config: AgentConfig,
                 generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.max_action = max_action
        self.encoder = HistoryEncoder(observation_dim, config.history_len, config.history_hidden_dim,
                                      config.history_layers, generators, config.history_encoder)
        self.denoiser = Denoiser(action_dim * config.action_chunk, self.encoder.output_dim, config.diffusion_steps,
                                 config.hidden_dim, generators)
        self.schedule = NoiseSchedule(config.beta_schedule, config.diffusion_steps)

    def sample(self, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """(K, B, C) contexts and (T, K, B, A) draws -> (K, B, A) action chunks by the reverse process."""
        return ddpm_sample(self.denoiser.condition(context), self.schedule, noise, self.max_action)


class Critic(nn.Module):
    """Twin Q heads over [state, action chunk]; the state is s_t, or [s_t, GRU(history)] from an encoder of its own."""

    def __init__(self, observation_dim: int, action_dim: int, config: AgentConfig,
                 generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.encoder = HistoryEncoder(observation_dim, config.history_len if config.critic_uses_history else 1,
                                      config.history_hidden_dim, config.history_layers, generators,
                                      config.history_encoder)
        self.heads = TwinCritic(self.encoder.output_dim, action_dim * config.action_chunk, config.hidden_dim,
                                generators)

    def features(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(K, B, H, Do), (K, B, H) -> (K, B, Ds) what the heads see of the state (s_t without a history encoder)."""
        return self.encoder(history, mask)


# -- the losses, as in the paper: the critic's target and loss, then the actor's two terms --

def critic_target_value(ema_actor: Actor, critic_target: Critic, batch: WindowBatch, target_chain: torch.Tensor,
                        q_repeats: torch.Tensor) -> torch.Tensor:
    """y = reward + sum_j weight_j V'(s_j) over the batch's J bootstrap states (trajdiff.data.returns), with
    V'(s) = min_i Q'_i(s, A'), A' ~ EMA actor; (K, B, 1). One state for n-step targets, n for lambda-returns.

    With the max-Q backup (q_repeats (K,) > 1 for the members using it), each head first takes its max over
    the member's sampled A'. target_chain (T, K, B, J, R, A) holds R = max repeats chains per state.
    """
    members, batch_size, states = batch.bootstrap_weight.shape
    repeats, chunk_dim = target_chain.shape[4], target_chain.shape[5]
    history, mask = batch.bootstrap_history.flatten(1, 2), batch.bootstrap_mask.flatten(1, 2)  # (K, B * J, ...)
    context = ema_actor.encoder(history, mask)
    features = critic_target.features(history, mask)
    if repeats > 1:  # row i * R + r is repeat r of state row i
        context = context.repeat_interleave(repeats, dim=1)
        features = features.repeat_interleave(repeats, dim=1)
    chain = target_chain.reshape(-1, members, batch_size * states * repeats, chunk_dim)
    target_q1, target_q2 = critic_target.heads(features, ema_actor.sample(context, chain))
    if repeats > 1:
        valid = torch.arange(repeats, device=q_repeats.device) < q_repeats[:, None, None]  # (K, 1, R)
        target_q1 = target_q1.view(members, batch_size * states, repeats).masked_fill(~valid, -math.inf)
        target_q2 = target_q2.view(members, batch_size * states, repeats).masked_fill(~valid, -math.inf)
        target_q1 = target_q1.amax(dim=2, keepdim=True)
        target_q2 = target_q2.amax(dim=2, keepdim=True)
    target_q = torch.minimum(target_q1, target_q2).view(members, batch_size, states)
    return batch.target_reward[..., None] + (batch.bootstrap_weight * target_q).sum(dim=2, keepdim=True)


def critic_loss(heads: TwinCritic, features: torch.Tensor, actions: torch.Tensor,
                target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_j mean_b (Q_j(s, a) - y)^2 per member, and Q1. Shapes: target (K, B, 1) -> (K,), (K, B, 1)."""
    current_q1, current_q2 = heads(features, actions)
    loss = (current_q1 - target).square().mean(dim=(1, 2)) + (current_q2 - target).square().mean(dim=(1, 2))
    return loss, current_q1


def q_loss(heads: TwinCritic, features: torch.Tensor, new_action: torch.Tensor,
           first_head: torch.Tensor) -> torch.Tensor:
    """Diffusion-QL's Q-term: -E[Q_i(s, a~pi)] / |E[Q_j(s, a~pi)]|, i the head a coin picked, j the other.

    The normaliser only scales (no gradient flows through it). Shapes: first_head (K,) bool -> (K,).
    """
    maximised = heads.head(features, new_action, first_head)
    with torch.no_grad():
        normaliser = heads.head(features, new_action, ~first_head)
    return -maximised.mean(dim=(1, 2)) / normaliser.abs().mean(dim=(1, 2))


def actor_loss(actor: Actor, heads: TwinCritic, batch: WindowBatch, critic_features: torch.Tensor, noise: UpdateNoise,
               eta: torch.Tensor, sample_weights: torch.Tensor | None,
               q_action: str = "sampled") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_bc + eta * L_q per member, both from one encoding of the history and one conditioning on it;
    returns (actor loss, bc loss, q loss), each (K,). critic_features (K, B, Ds) are detached by the caller.

    The Q-term's action is the reverse chain's (q_action "sampled"), or the one-step reconstruction from the
    BC loss's noised data action and its predicted noise ("approximated"; noise.policy_chain is then unused).
    """
    policy = actor.denoiser.condition(actor.encoder(batch.history, batch.history_mask))
    noisy, predicted = noise_prediction(policy, actor.schedule, batch.actions, noise.bc_steps, noise.bc_noise)
    step_mask = batch.action_mask if batch.action_mask.shape[2] > 1 else None  # a single action is always held
    bc = prediction_error(predicted, noise.bc_noise, sample_weights, step_mask)
    if q_action == "approximated":
        new_action = one_step_actions(actor.schedule, noisy, noise.bc_steps, predicted, actor.max_action)
    else:
        new_action = ddpm_sample(policy, actor.schedule, noise.policy_chain, actor.max_action)
    q = q_loss(heads, critic_features, new_action, noise.first_head)
    return bc + eta * q, bc, q


def select_actions(actor: Actor, critic: Critic, history: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
                   uniform: torch.Tensor, candidates: int,
                   deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Diffusion-QL's action selection, from given draws: ``candidates`` actions per state from the actor, one
    picked with probability softmax(min-Q of the critic) by the inverse CDF at ``uniform``, or the argmax;
    returns the actions and the critic's min-Q of each (what evaluation compares with the returns obtained).

    A pure function of its inputs (trajdiff.export hands it to torch.export). Shapes: history (K, E, H, Do),
    mask (K, E, H), noise (T, K, E * candidates, A), uniform (K, E, 1) in [0, 1) -> (K, E, A), (K, E), A the
    action chunk's size (action_chunk x Da).
    """
    members, envs = history.shape[:2]
    context = actor.encoder(history, mask).repeat_interleave(candidates, dim=1)
    features = critic.features(history, mask).repeat_interleave(candidates, dim=1)
    actions = actor.sample(context, noise)  # (K, E * candidates, A)
    q = torch.minimum(*critic.heads(features, actions)).view(members, envs, candidates)
    if deterministic:
        choice = q.argmax(dim=2)  # (K, E)
    else:
        cumulative = torch.softmax(q, dim=2).cumsum(dim=2)
        choice = (cumulative < uniform * cumulative[..., -1:]).sum(dim=2).clamp(max=candidates - 1)
    action_dim = actions.shape[-1]
    actions = actions.view(members, envs, candidates, action_dim)
    chosen = torch.gather(actions, 2, choice[..., None, None].expand(-1, -1, 1, action_dim)).squeeze(2)
    return chosen, torch.gather(q, 2, choice[..., None]).squeeze(2)


class DiffusionQLAgent(GraphInputs):
    """K members: actors, EMA actors, twin critics and their targets, optimisers and randomness.

    Every tensor the update reads is allocated here and only ever changed in place (a captured graph reads
    them by address); :meth:`freeze` (GraphInputs) makes re-binding one of them an error from then on.
    """

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
        self.history_len, self.action_chunk = config.history_len, config.action_chunk
        self.max_action = max_action
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.device = device
        self.seeds = list(seeds)
        # initial weights from CPU generators of the members' weight streams: the same on every device
        initial = [stream_generator(seed, "weights") for seed in seeds]
        self.actor = Actor(observation_dim, action_dim, max_action, config, initial).to(device)
        self.ema_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = Critic(observation_dim, action_dim, config, initial).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.update_count = torch.zeros((), dtype=torch.int64, device=device)  # updates done: the one count
        self.actor_optimizer = MemberAdam(list(self.actor.parameters()), self.update_count)
        self.critic_optimizer = MemberAdam(list(self.critic.parameters()), self.update_count)

        def member_values(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32, device=device)

        self.eta = member_values([c.eta for c in configs])
        self.actor_lr = member_values([c.actor_lr for c in configs])
        self.critic_lr = member_values([c.critic_lr for c in configs])
        self.grad_norm = member_values([c.grad_norm if c.grad_norm > 0 else math.inf for c in configs])
        # the learning-rate decay spans the run's length, total_updates (a resumed run may be given a longer one)
        schedule = [decay_period_and_horizon(c.lr_decay, total_updates) for c in configs]
        self.decay_period = member_values([period for period, _ in schedule])
        self.decay_horizon = member_values([horizon for _, horizon in schedule])
        self.q_repeats = torch.tensor([MAX_Q_REPEATS if c.max_q_backup else 1 for c in configs], device=device)
        self.max_q_repeats = MAX_Q_REPEATS if any(c.max_q_backup for c in configs) else 1
        self.random = MemberRandom(seeds, "diffusion", device)

    def state_dict(self) -> dict[str, Any]:
        """All that training changes, by name, as live tensors: the four networks, both optimisers' moments and
        the update count (the members' random streams are ``self.random``'s). Checkpoint slices
        (trajdiff.agent_state), the non-finite check and the graph warm-up's snapshot (trajdiff.engine) all
        read this one tree."""
        return {**{name: getattr(self, name).state_dict() for name in (*NETWORKS, *OPTIMIZERS)},
                "update_count": self.update_count}

    def updates_done(self) -> int:
        """Updates done (a host read of the device counter: not for the training loop's hot path)."""
        return int(self.update_count.item())

    def draw_noise(self, batch_size: int) -> UpdateNoise:
        """Every random draw of one update, member by member from its own generators (see UpdateNoise)."""
        steps, da, repeats = self.config.diffusion_steps, self.action_dim * self.action_chunk, self.max_q_repeats
        states = max(c.bootstrap_states for c in self.configs)
        target_chains = []
        for k, generator in enumerate(self.random.generators):
            own = MAX_Q_REPEATS if self.configs[k].max_q_backup else 1  # a member alone draws the same numbers
            own_states = self.configs[k].bootstrap_states
            chain = torch.randn((steps, batch_size, own_states, own, da), generator=generator, device=self.device)
            if (own_states, own) != (states, repeats):
                chain = nn.functional.pad(chain, (0, 0, 0, repeats - own, 0, states - own_states))
            target_chains.append(chain)
        return UpdateNoise(
            target_chain=stack_members(target_chains, dim=1),
            bc_steps=self.random.integers(steps, (batch_size,)),
            bc_noise=self.random.normal((batch_size, da)),
            policy_chain=self.random.normal((steps, batch_size, da)).transpose(0, 1),
            first_head=self.random.uniform(()) > 0.5,
        )

    def update(self, batch: WindowBatch, sample_weights: torch.Tensor | None = None,
               noise: UpdateNoise | None = None) -> dict[str, torch.Tensor]:
        """One gradient update of critic then actor for every member; returns (K,) detached metrics.

        Shapes: batch of K x B windows; sample_weights (K, B) or None (Diffusion-QL's unweighted loss);
        noise: this update's draws (drawn from the members' generators when None).
        """
        if noise is None:
            noise = self.draw_noise(batch.actions.shape[1])
        lr_factor = learning_rate_factor(self.update_count, self.decay_period, self.decay_horizon)

        with torch.no_grad():
            target = critic_target_value(self.ema_actor, self.critic_target, batch, noise.target_chain,
                                         self.q_repeats)
        critic_features = self.critic.features(batch.history, batch.history_mask)
        td_loss, current_q1 = critic_loss(self.critic.heads, critic_features, batch.actions, target)
        apply_gradients(self.critic_optimizer, td_loss, self.grad_norm, self.critic_lr * lr_factor)

        if self.critic.encoder.gru is not None:  # the critic's own encoder moved in the critic's update
            with torch.no_grad():
                critic_features = self.critic.features(batch.history, batch.history_mask)
        policy_loss, bc, q = actor_loss(self.actor, self.critic.heads, batch, critic_features.detach(), noise,
                                        self.eta, sample_weights, self.config.q_action)
        apply_gradients(self.actor_optimizer, policy_loss, self.grad_norm, self.actor_lr * lr_factor)

        self.update_targets()
        self.update_count += 1
        return {
            "critic_loss": td_loss.detach(),
            "bc_loss": bc.detach(),
            "q_loss": q.detach(),
            "actor_loss": policy_loss.detach(),
            "q_mean": current_q1.detach().mean(dim=(1, 2)),
            "q_target_mean": target.mean(dim=(1, 2)),
            "lr_actor": self.actor_lr * lr_factor,
        }

    def update_targets(self) -> None:
        """EMA actor every ema_every updates once past ema_start; Polyak critic target every update.

        The EMA's condition is a weight of 0 or 1 - decay on the device: no host branch.
        """
        config, count = self.config, self.update_count
        ema_due = (count >= config.ema_start) & (torch.remainder(count, config.ema_every) == 0)
        lerp_parameters(self.ema_actor, self.actor, ema_due * (1.0 - config.ema_decay))
        lerp_parameters(self.critic_target, self.critic, config.tau)

    @torch.no_grad()
    def act(self, history: torch.Tensor, mask: torch.Tensor, random: MemberRandom,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Diffusion-QL's action selection for a batch of environments per member (see :func:`select_actions`):
        the action chunks and the target critic's min-Q of each.

        Shapes: history (K, E, H, Do), mask (K, E, H) -> (K, E, h, Da), (K, E); h = action_chunk.
        """
        members, envs, candidates = history.shape[0], history.shape[1], self.config.action_candidates
        noise = random.normal((self.config.diffusion_steps, envs * candidates, self.action_dim * self.action_chunk))
        uniform = random.uniform((envs, 1))
        chunks, values = select_actions(self.actor, self.critic_target, history, mask, noise.transpose(0, 1),
                                        uniform, candidates, deterministic)
        return chunks.view(members, envs, self.action_chunk, self.action_dim), values

    def nonfinite_members(self) -> list[int]:
        """Members with a NaN or infinite weight in any network (one host read)."""
        state = self.state_dict()
        finite = torch.stack([torch.isfinite(tensor).flatten(1).all(dim=1)
                              for tensor in state_leaves({name: state[name] for name in NETWORKS})]).all(dim=0)
        return (~finite).nonzero().flatten().tolist()
