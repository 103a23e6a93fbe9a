"""Diffusion-QL's published per-dataset hyperparameters for the gym-locomotion datasets.

From the authors' code (Zhendong-Wang/Diffusion-Policies-for-Offline-RL, main.py): every
locomotion dataset uses lr 3e-4, eta 1.0, no max-Q backup, no reward tuning and 2000 epochs of
1000 updates; they differ in the gradient-norm clip. The authors' command line adds ``--lr_decay``:
a CosineAnnealingLR with T_max = 2000 (epochs) that their loop steps once per 50-epoch training
call, so over 2M updates the rate falls by 0.1%; ``lr_decay="diffusion-ql"`` is that schedule.
(The published offline model selection, ``top_k`` over BC loss, is not reproduced: trajdiff reports
the final policy.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from trajdiff.agent import AgentConfig
from trajdiff.errors import TrajdiffError
from trajdiff.optim import LearningRateDecay


@dataclass(frozen=True)
class Preset:
    """One dataset's published settings: the algorithm's (:meth:`applied_to`) and the run's length."""

    grad_norm: float
    actor_lr: float = 3e-4
    eta: float = 1.0
    max_q_backup: bool = False
    lr_decay: LearningRateDecay = "diffusion-ql"
    updates: int = 2_000_000

    def applied_to(self, config: AgentConfig) -> AgentConfig:
        """``config`` with the preset's algorithm settings."""
        return dataclasses.replace(config, grad_norm=self.grad_norm, actor_lr=self.actor_lr, eta=self.eta,
                                   max_q_backup=self.max_q_backup, lr_decay=self.lr_decay)


PRESETS: dict[str, Preset] = {
    name: Preset(grad_norm=grad_norm) for name, grad_norm in {
        "halfcheetah-medium-v2": 9.0, "hopper-medium-v2": 9.0, "walker2d-medium-v2": 1.0,
        "halfcheetah-medium-replay-v2": 2.0, "hopper-medium-replay-v2": 4.0, "walker2d-medium-replay-v2": 4.0,
        "halfcheetah-medium-expert-v2": 7.0, "hopper-medium-expert-v2": 5.0, "walker2d-medium-expert-v2": 5.0,
    }.items()
}


def find_preset(name: str) -> Preset:
    """A preset by name; a D4RL-style name without version (``hopper-medium``) means -v2."""
    key = name if name in PRESETS else f"{name}-v2"
    if key not in PRESETS:
        raise TrajdiffError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[key]
