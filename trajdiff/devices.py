"""The device a run uses, and what a captured CUDA graph asks of the objects whose tensors it reads."""

from __future__ import annotations

import torch

from trajdiff.errors import TrajdiffError


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; an unavailable device is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise TrajdiffError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from error
    if resolved.type not in ("cpu", "cuda"):
        raise TrajdiffError(f"device {device!r} is not supported: trajdiff runs on cpu or cuda (auto, cpu, cuda, "
                            "cuda:N)")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TrajdiffError(f"device {device!r} asked for, but this PyTorch build sees no CUDA GPU")
    return resolved


class GraphInputs:
    """An object whose tensors a captured CUDA graph reads by address: after :meth:`freeze`, re-binding an
    attribute that :meth:`read_by_graph` names raises (a graph would go on reading the old tensor); change it in
    place instead. The agent and the update engine are such objects."""

    frozen = False

    def read_by_graph(self, name: str) -> bool:
        """Whether the graph reads attribute ``name``: by default, every tensor and module."""
        return isinstance(self.__dict__.get(name), torch.Tensor | torch.nn.Module)

    def freeze(self) -> None:
        object.__setattr__(self, "frozen", True)

    def __setattr__(self, name: str, value: object) -> None:
        if self.frozen and self.read_by_graph(name):
            raise TrajdiffError(f"{type(self).__name__}.{name} is read by a captured CUDA graph: change it in "
                                "place, not by assignment")
        super().__setattr__(name, value)
