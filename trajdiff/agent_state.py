"""A member's slice of a batched agent, saved and loaded: each member's checkpoint is a one-member agent's.

Everything needed to continue member k bit for bit: its slice of every tensor of the agent's state tree
(:meth:`DiffusionQLAgent.state_dict`: networks, EMA and target copies, optimiser moments), its diffusion-noise
generator and the number of updates done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trajdiff.agent import DiffusionQLAgent, state_leaves
from trajdiff.errors import TrajdiffError
from trajdiff.streams import generator_state, restore_generator, stream_seed


def _member_tree(agent: DiffusionQLAgent) -> dict[str, Any]:
    """The agent's state tree without its update count: the part whose every tensor is (K, ...)."""
    state = agent.state_dict()
    del state["update_count"]
    return state


def _slice(tree: Any, member: int) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree[member:member + 1].clone()
    if isinstance(tree, dict):
        return {key: _slice(value, member) for key, value in tree.items()}
    return [_slice(value, member) for value in tree]


def _saved_leaves(live: Any, saved: Any) -> list[torch.Tensor]:
    """The tensors of a saved tree in the order of the live tree's leaves (keys the agent no longer has, such
    as the per-optimiser update counts of earlier checkpoints, are skipped)."""
    if isinstance(live, torch.Tensor):
        return [saved]
    if isinstance(live, dict):
        return [leaf for key in live for leaf in _saved_leaves(live[key], saved[key])]
    return [leaf for mine, theirs in zip(live, saved, strict=True) for leaf in _saved_leaves(mine, theirs)]


def member_state(agent: DiffusionQLAgent, member: int) -> dict:
    """Member ``member``'s state, with (1, ...) slices of every tensor (copies, on their device)."""
    return {**_slice(_member_tree(agent), member), "generator": generator_state(agent.random.generators[member]),
            "updates_done": agent.updates_done()}


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
    live = _member_tree(agent)
    saved = [_saved_leaves(live, state) for state in states]
    with torch.no_grad():
        for index, tensor in enumerate(state_leaves(live)):
            tensor.copy_(torch.cat([member[index] for member in saved]))
    messages = []
    updates_done = states[0]["updates_done"]
    for member, (state, generator) in enumerate(zip(states, agent.random.generators)):
        fresh = stream_seed(agent.seeds[member], "diffusion", updates_done)
        if not restore_generator(generator, state["generator"], fresh):
            messages.append(f"member {member}: random streams saved on {state['generator']['device']} start "
                            f"afresh on {generator.device.type}")
    agent.update_count.fill_(updates_done)
    return messages
