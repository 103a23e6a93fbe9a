"""One training update with everything around it on the device: windows, weights, the update, metric sums.

The training loop calls :meth:`UpdateEngine.step` once per update and reads :meth:`UpdateEngine.means`
only at its log points, so between them nothing waits on the host. On CUDA the whole step (window
sampling and noise draws included) is captured once as a CUDA graph and replayed: one launch per
update instead of several hundred from Python. The graph replays the same kernels on the same
memory, so everything it touches is allocated before capture and updated in place, and every
generator it draws from is registered with it.
"""

from __future__ import annotations

import sys

import torch

from trajdiff.agent import DiffusionQLAgent
from trajdiff.data.sampler import TrajectorySampler

WARMUP_UPDATES = 3
"""Eager updates (real ones) before the graph is captured."""


class UpdateEngine:
    """sample -> expertise weights -> agent.update -> metric sums, eagerly or as a replayed CUDA graph.

    Shapes: episode_weights (K, E) per-member BC weight of each episode, or None for no weighting
    in any member (a member without weighting has a row of ones). Metric sums are (K,) tensors.
    """

    def __init__(self, agent: DiffusionQLAgent, sampler: TrajectorySampler, batch_size: int,
                 episode_weights: torch.Tensor | None, cuda_graph: bool) -> None:
        self.agent, self.sampler, self.batch_size = agent, sampler, batch_size
        self.episode_weights = episode_weights
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.use_graph = cuda_graph and agent.device.type == "cuda"
        if self.use_graph and not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
            # graphs with generators of one's own need PyTorch >= 2.5: run eagerly rather than fail
            print("trajdiff: this PyTorch cannot capture per-member generators in a CUDA graph; updating eagerly",
                  file=sys.stderr)
            self.use_graph = False
        self.eager_updates = 0

    def _update(self) -> None:
        batch = self.sampler.draw(self.batch_size)
        weights = None
        if self.episode_weights is not None:
            weights = self.episode_weights.gather(1, batch.episode_index)  # (K, B)
        metrics = self.agent.update(batch, weights)
        if weights is not None:
            metrics |= {"weight/std": weights.std(dim=1), "weight/min": weights.amin(dim=1),
                        "weight/max": weights.amax(dim=1)}
        if not self.sums:  # the first call (eager) allocates the sums the graph then updates in place
            self.sums = {key: torch.zeros_like(value) for key, value in metrics.items()}
        for key, value in metrics.items():
            self.sums[key].add_(value)

    def step(self) -> None:
        """One update of every member: eager, or a replay of the captured graph."""
        if self.graph is not None:
            self.graph.replay()
        elif self.use_graph:
            # PyTorch's recipe: a few eager updates on a side stream (lazy state, cuBLAS workspaces),
            # then capture; capturing records the kernels without running them
            side = torch.cuda.Stream(device=self.agent.device)
            side.wait_stream(torch.cuda.current_stream(self.agent.device))
            with torch.cuda.stream(side):
                self._update()
            torch.cuda.current_stream(self.agent.device).wait_stream(side)
            self.eager_updates += 1
            if self.eager_updates == WARMUP_UPDATES:
                self._capture()
        else:
            self._update()
        self.count += 1

    def _capture(self) -> None:
        self.graph = torch.cuda.CUDAGraph()
        for generator in [*self.sampler.generators, *self.agent.random.generators]:
            self.graph.register_generator_state(generator)
        for parameter in [*self.agent.actor.parameters(), *self.agent.critic.parameters()]:
            parameter.grad = None  # the captured backward allocates them in the graph's pool
        with torch.cuda.graph(self.graph):
            self._update()

    def load_sums(self, sums: list[dict[str, torch.Tensor]], count: int) -> None:
        """Restore the sums saved with each member's checkpoint ((1,) tensors) and their count."""
        self.sums = {key: torch.cat([member[key] for member in sums]).to(self.agent.device) for key in sums[0]}
        self.count = count

    def means(self) -> dict[str, torch.Tensor]:
        """Mean of each metric per member since the last call, as CPU (K,) tensors; resets the sums in place."""
        means = {key: (value / max(self.count, 1)).cpu() for key, value in self.sums.items()}
        for value in self.sums.values():
            value.zero_()
        self.count = 0
        return means
