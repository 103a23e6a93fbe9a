"""A member's slice of a batched agent, saved and loaded: each member's checkpoint is a one-member agent's.

Everything needed to continue member k bit for bit: its slice of every network and optimiser moment, the
optimisers' update counts, its diffusion-noise generator and the number of updates done.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trajdiff.agent import DiffusionQLAgent
from trajdiff.errors import TrajdiffError
from trajdiff.optim import MemberAdam
from trajdiff.streams import stream_seed
from trajdiff.utils import generator_state, restore_generator

NETWORKS = ("actor", "ema_actor", "critic", "critic_target")
OPTIMIZERS = ("actor_optimizer", "critic_optimizer")


def member_state(agent: DiffusionQLAgent, member: int) -> dict:
    """Member ``member``'s state, with (1, ...) slices of every tensor (copies, on their device)."""
    def slice_module(module: nn.Module) -> dict:
        return {name: tensor[member:member + 1].clone() for name, tensor in module.state_dict().items()}

    def slice_optimizer(optimizer: MemberAdam) -> dict:
        return {"exp_avg": [t[member:member + 1].clone() for t in optimizer.exp_avg],
                "exp_avg_sq": [t[member:member + 1].clone() for t in optimizer.exp_avg_sq],
                "updates_taken": optimizer.updates_taken.cpu()}

    return {**{name: slice_module(getattr(agent, name)) for name in NETWORKS},
            **{name: slice_optimizer(getattr(agent, name)) for name in OPTIMIZERS},
            "generator": generator_state(agent.random.generators[member]), "updates_done": agent.updates_done()}


def load_member_states(agent: DiffusionQLAgent, states: Sequence[dict]) -> list[str]:
    """Load one saved state per member (from :func:`member_state`), in place, onto the agent's device.

    A generator state saved on another device type cannot be restored here: that member's diffusion stream
    starts afresh (from its seed and the update count), and the returned messages say so (bitwise continuation
    holds on the device type the run was written on).
    """
    if len(states) != agent.members:
        raise ValueError(f"{len(states)} saved members for an agent of {agent.members}")
    if agent.frozen:
        raise TrajdiffError("restore a checkpoint before the update is captured as a graph, not after")
    for name in NETWORKS:
        stacked = {key: torch.cat([state[name][key] for state in states]) for key in states[0][name]}
        getattr(agent, name).load_state_dict(stacked)
    for name in OPTIMIZERS:
        optimizer: MemberAdam = getattr(agent, name)
        optimizer.load_state_dict({
            key: [torch.cat(parts) for parts in zip(*(state[name][key] for state in states))]
            for key in ("exp_avg", "exp_avg_sq")} | {"updates_taken": states[0][name]["updates_taken"]})
    messages = []
    updates_done = states[0]["updates_done"]
    for member, (state, generator) in enumerate(zip(states, agent.random.generators)):
        fresh = stream_seed(agent.seeds[member], "diffusion", updates_done)
        if not restore_generator(generator, state["generator"], fresh):
            messages.append(f"member {member}: random streams saved on {state['generator']['device']} start "
                            f"afresh on {generator.device.type}")
    agent.update_count.fill_(updates_done)
    return messages
