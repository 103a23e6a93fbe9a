"""One training update with everything around it on the device: windows, weights, the update, metric sums.

The training loop calls :meth:`UpdateEngine.update` once per update and reads :meth:`UpdateEngine.means`
only at its log points, so between them nothing waits on the host. On CUDA, :meth:`UpdateEngine.capture`
(called once, after a checkpoint is restored) records the whole update (window sampling and noise draws
included) as a CUDA graph, which every later update replays: one launch instead of several hundred from
Python. A graph replays the same kernels on the same memory, so:

- every tensor it reads is allocated before capture and only ever changed in place; the agent and the
  engine refuse re-binding one after capture (``freeze``), and ``load_sums`` refuses after capture;
- every generator it draws from is registered with it;
- warm-up and capture run on one side stream of the run's device (``cuda:N`` included);
- capture changes nothing: the warm-up updates are undone, so the run is the same update for update
  whether or not it is captured.

The capture logic is tested on CPU with a replay of a traced update (``tests/test_engine.py``), which
runs the same kernels on the same tensors as a graph would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Literal, Protocol

import torch

from trajdiff.agent import DiffusionQLAgent, UpdateNoise, state_leaves
from trajdiff.data.sampler import TrajectorySampler, WindowBatch
from trajdiff.devices import GraphInputs
from trajdiff.errors import TrajdiffError

WARMUP_UPDATES = 3
"""Eager updates run (and undone) before capture: lazy state, cuBLAS workspaces, the autograd engine's streams."""

MIN_TORCH_FOR_GRAPHS = (2, 5)
"""PyTorch from which a CUDA graph can register generators of one's own (CUDAGraph.register_generator_state)."""


def graph_support(device: torch.device, version: str = torch.__version__) -> str | None:
    """Why updates on ``device`` cannot be captured as a CUDA graph with this PyTorch, or None when they can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (the run is on {device.type})"
    major, minor = (int(part) for part in version.split("+")[0].split(".")[:2])
    if (major, minor) < MIN_TORCH_FOR_GRAPHS:
        return (f"PyTorch {version} cannot register per-member generators with a CUDA graph (needs "
                f"{'.'.join(map(str, MIN_TORCH_FOR_GRAPHS))} or later)")
    return None


UpdateMode = Literal["eager", "cuda-graph", "compiled"]


def update_mode(device: torch.device, cuda_graph: bool, compile_update: bool) -> tuple[UpdateMode, str | None]:
    """How a run's updates run, decided here alone: compiled by torch.compile when asked (on CUDA in place of the
    graph); a replayed CUDA graph on CUDA when asked and this PyTorch can; else eager. With the sentence that tells
    a CUDA run which it got (None where nothing was asked that the device changes)."""
    graph_asked = cuda_graph and device.type == "cuda"
    if compile_update:
        return "compiled", "updates run compiled (torch.compile), without a CUDA graph" if graph_asked else None
    if not graph_asked:
        return "eager", None
    reason = graph_support(device)
    if reason is not None:
        return "eager", f"updates run eagerly: {reason}"
    return "cuda-graph", "updates run as a replayed CUDA graph"


class Recorder(Protocol):
    """How an update is recorded and replayed: a CUDA graph on CUDA, a traced replay in the CPU tests."""

    runs_while_recording: bool
    """Whether recording also runs the update (a trace does; a CUDA graph capture only records)."""

    def warm_up(self) -> contextlib.AbstractContextManager:
        """The context the warm-up updates run in (the capture's stream)."""
        ...

    def record(self, update: Callable[[], None], generators: list[torch.Generator]) -> Callable[[], None]:
        """Record ``update`` (drawing from ``generators``) and return the call that replays it."""
        ...


class CudaGraphRecorder:
    """torch.cuda.CUDAGraph on one side stream of the run's device, with the members' generators registered."""

    runs_while_recording = False

    def __init__(self, device: torch.device) -> None:
        self.device = device
        with torch.cuda.device(device):
            self.stream = torch.cuda.Stream(device=device)

    @contextlib.contextmanager
    def warm_up(self) -> Iterator[None]:
        with torch.cuda.device(self.device):
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                yield
            torch.cuda.current_stream(self.device).wait_stream(self.stream)

    def record(self, update: Callable[[], None], generators: list[torch.Generator]) -> Callable[[], None]:
        graph = torch.cuda.CUDAGraph()
        for generator in generators:
            graph.register_generator_state(generator)
        with torch.cuda.device(self.device), torch.cuda.graph(graph, stream=self.stream):
            update()
        return graph.replay


def compiled_update(agent: DiffusionQLAgent) -> Callable[..., dict[str, torch.Tensor]]:
    """``agent.update(batch, weights, noise)`` compiled by torch.compile (inductor) as one graph, backward passes
    and optimiser steps included (Dynamo traces ``backward()`` with ``trace_autograd_ops``). The noise comes in
    drawn, so the graph holds no generator. Fused kernels round differently: equal to eager updates to float
    rounding, not bitwise. The first call compiles (one to three minutes on a CPU); each shape compiles once.
    Dynamo keys its cache on the function's code and guards on the agent, so a second agent compiled in the
    same process compiles anew (a training process has one)."""
    compiled = torch.compile(agent.update, dynamic=False)

    def update(batch: WindowBatch, weights: torch.Tensor | None, noise: UpdateNoise) -> dict[str, torch.Tensor]:
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            return compiled(batch, weights, noise)

    return update


class UpdateEngine(GraphInputs):
    """sample -> expertise weights -> noise -> agent.update -> metric sums, as ``mode`` says (:func:`update_mode`):
    eagerly, as a replayed CUDA graph (captured by :meth:`start`), or compiled (:func:`compiled_update`).

    Shapes: episode_weights (K, E) per-member BC weight of each episode, or None for no weighting
    in any member (a member without weighting has a row of ones). Metric sums are (K,) tensors.
    """

    def __init__(self, agent: DiffusionQLAgent, sampler: TrajectorySampler, batch_size: int,
                 episode_weights: torch.Tensor | None, mode: UpdateMode = "eager") -> None:
        self.agent, self.sampler, self.batch_size = agent, sampler, batch_size
        self.episode_weights = episode_weights
        self.mode = mode
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.replay: Callable[[], None] | None = None
        self.agent_update = compiled_update(agent) if mode == "compiled" else agent.update

    @property
    def captured(self) -> bool:
        return self.replay is not None

    def read_by_graph(self, name: str) -> bool:
        return name in ("episode_weights", "sums", "agent_update", "replay")

    def compute_update(self) -> None:
        """One update of every member and its metrics added to the sums: the function a graph records."""
        batch = self.sampler.draw(self.batch_size)
        weights = None
        if self.episode_weights is not None:
            weights = self.episode_weights.gather(1, batch.episode_index)  # (K, B)
        metrics = self.agent_update(batch, weights, self.agent.draw_noise(self.batch_size))
        if weights is not None:
            metrics |= {"weight_std": weights.std(dim=1), "weight_min": weights.amin(dim=1),
                        "weight_max": weights.amax(dim=1)}
        if not self.sums:  # the first call (eager) allocates the sums that a graph then updates in place
            self.sums = {key: torch.zeros_like(value) for key, value in metrics.items()}
        for key, value in metrics.items():
            self.sums[key].add_(value)

    def start(self) -> None:
        """Ready the updates, once any checkpoint is restored: in the cuda-graph mode, capture the graph."""
        if self.mode == "cuda-graph":
            self.capture()

    def update(self) -> None:
        """One update of every member: a replay of the captured graph, or eager."""
        if self.replay is not None:
            self.replay()
        else:
            self.compute_update()
        self.count += 1

    def capture(self, recorder: Recorder | None = None) -> None:
        """Record the update once for every later :meth:`update` to replay (on CUDA: a CUDA graph).

        Call after a checkpoint is restored. Warm-up updates run first and are then undone, so the
        training state after capture is the one before it.
        """
        if self.captured:
            raise TrajdiffError("the update is captured already")
        if recorder is None:
            reason = graph_support(self.agent.device)
            if reason is not None:
                raise TrajdiffError(reason)
            recorder = CudaGraphRecorder(self.agent.device)
        generators = [*self.sampler.generators, *self.agent.random.generators]
        saved = self._training_state(generators)
        with recorder.warm_up():
            for _ in range(WARMUP_UPDATES):
                self.compute_update()
        self._restore_training_state(saved, generators)
        for parameter in [*self.agent.actor.parameters(), *self.agent.critic.parameters()]:
            parameter.grad = None  # the recorded backward allocates them in the graph's memory
        replay = recorder.record(self.compute_update, generators)
        if recorder.runs_while_recording:
            self._restore_training_state(saved, generators)
        self.agent.freeze()
        self.replay = replay
        self.freeze()

    def _state_tensors(self) -> list[torch.Tensor]:
        """Every tensor an update writes: the agent's state tree (weights, moments, the update count), the sums."""
        return [*state_leaves(self.agent.state_dict()), *self.sums.values()]

    def _training_state(self, generators: list[torch.Generator]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        with torch.no_grad():
            return [tensor.clone() for tensor in self._state_tensors()], [g.get_state() for g in generators]

    def _restore_training_state(self, saved: tuple[list[torch.Tensor], list[torch.Tensor]],
                                generators: list[torch.Generator]) -> None:
        tensors, states = saved
        current = self._state_tensors()
        with torch.no_grad():
            for index, tensor in enumerate(current):
                if index < len(tensors):
                    tensor.copy_(tensors[index])
                else:
                    tensor.zero_()  # sums the warm-up allocated: none were restored, so none had been added
        for generator, state in zip(generators, states):
            generator.set_state(state)

    def load_sums(self, sums: list[dict[str, torch.Tensor]], count: int) -> None:
        """Restore the sums saved with each member's checkpoint ((1,) tensors) and their count (before capture)."""
        if self.captured:
            raise TrajdiffError("restore the metric sums before the update is captured, not after")
        self.sums = {key: torch.cat([member[key] for member in sums]).to(self.agent.device) for key in sums[0]}
        self.count = count

    def means(self) -> dict[str, torch.Tensor]:
        """Mean of each metric per member since the last call, as CPU (K,) tensors; resets the sums in place."""
        means = {key: (value / max(self.count, 1)).cpu() for key, value in self.sums.items()}
        for value in self.sums.values():
            value.zero_()
        self.count = 0
        return means
