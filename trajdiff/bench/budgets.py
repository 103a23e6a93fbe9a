"""A bench's budgets: how long every run trains, how it is evaluated, and how many seeds it takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """One budget: updates, evaluation cadence and episodes, and the default number of seeds."""

    updates: int
    """Gradient updates of every run (a baseline's as well)."""
    eval_every: int
    """Evaluate (and checkpoint) every this many updates."""
    eval_episodes: int
    """Episodes per evaluation."""
    seeds: int
    """Seeds per method and dataset unless --seeds says otherwise."""


BUDGETS: dict[str, Budget] = {
    # asserts the pipeline end to end in CI (scores at 40 updates mean nothing)
    "smoke": Budget(updates=40, eval_every=20, eval_episodes=2, seeds=1),
    # about an hour per dataset on a 2-core CPU: 5 methods x 2 seeds x 10k updates
    "cpu": Budget(updates=10_000, eval_every=2_500, eval_episodes=10, seeds=2),
    # the partial-observability comparison on a 2-core CPU: 4 methods x 5 seeds x 20k updates on one dataset,
    # about 2 hours per 10k updates with --workers 4
    "cpu-20k": Budget(updates=20_000, eval_every=2_000, eval_episodes=10, seeds=5),
    # the largest CPU evidence: 5 seeds x 50k updates, 10 evaluations; split into parts with --stop-at
    "cpu-50k": Budget(updates=50_000, eval_every=5_000, eval_episodes=10, seeds=5),
    # a tenth of Diffusion-QL's protocol, 5 seeds, dense evaluations (one GPU, seeds batched)
    "gpu": Budget(updates=200_000, eval_every=10_000, eval_episodes=10, seeds=5),
    # Diffusion-QL's protocol: 2000 epochs of 1000 updates, 10 evaluation episodes, 5 seeds (a GPU)
    "paper": Budget(updates=2_000_000, eval_every=50_000, eval_episodes=10, seeds=5),
}
