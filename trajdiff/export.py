"""A trained member's policy as a ``torch.export`` program: code that does not import trajdiff can run it.

The program is one member's action selection with its randomness as inputs:
    actions = program(history, mask, noise, uniform)
    history (E, H, Do) float32: the last H observations of each of E environments, oldest first, zero-padded
        before the episode's start; mask (E, H) bool, True on real steps (the last always);
    noise (T, E, C, h * Da) float32 ~ N(0, 1): the reverse chains of the C candidate chunks of h actions;
    uniform (E, 1) float32 ~ U[0, 1): the draw that picks one candidate by softmax over Q;
    -> actions (E, h, Da) float32: the chosen chunk, to play open-loop (h = 1: one action per step).
E is dynamic; H, Do, Da, h (action chunk), T (diffusion steps) and C (action candidates) are fixed and written in
policy.json.
"""

from __future__ import annotations

import torch
from torch import nn

from trajdiff.agent import Actor, Critic, DiffusionQLAgent, select_actions
from trajdiff.agent_state import member_state


class ExportablePolicy(nn.Module):
    """One member of ``agent`` behind plain tensor inputs (see the module docstring for the shapes)."""

    def __init__(self, agent: DiffusionQLAgent, member: int = 0) -> None:
        super().__init__()
        state = member_state(agent, member)  # the member's networks alone, (1, ...) weights
        config = agent.configs[member]
        generators = [torch.Generator()]  # initial weights, overwritten just below
        self.actor = Actor(agent.observation_dim, agent.action_dim, agent.max_action, config,
                           generators).to(agent.device)
        self.critic = Critic(agent.observation_dim, agent.action_dim, config, generators).to(agent.device)
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic_target"])  # actions are chosen by the target critic
        self.candidates, self.chunk = config.action_candidates, config.action_chunk

    def forward(self, history: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
                uniform: torch.Tensor) -> torch.Tensor:
        steps, envs = noise.shape[:2]
        chains = noise.reshape(steps, 1, envs * self.candidates, noise.shape[-1])
        chunks = select_actions(self.actor, self.critic, history[None], mask[None], chains, uniform[None],
                                self.candidates)[0][0]  # the chunks of the one member
        return chunks.view(envs, self.chunk, -1)


def export_policy(agent: DiffusionQLAgent, member: int = 0) -> torch.export.ExportedProgram:
    """The member's policy as an exported program with a dynamic number of environments."""
    policy = ExportablePolicy(agent, member).eval()
    config = agent.configs[member]
    envs, device = 2, agent.device  # the program runs where the agent lives
    example = (torch.zeros(envs, config.history_len, agent.observation_dim, device=device),
               torch.ones(envs, config.history_len, dtype=torch.bool, device=device),
               torch.zeros(config.diffusion_steps, envs, config.action_candidates,
                           config.action_chunk * agent.action_dim, device=device),
               torch.zeros(envs, 1, device=device))
    dimension = torch.export.Dim("envs", min=1, max=4096)
    with torch.no_grad():
        return torch.export.export(policy, example, dynamic_shapes=(
            {0: dimension}, {0: dimension}, {1: dimension}, {0: dimension}))
