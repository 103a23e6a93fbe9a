"""The bench's trajdiff methods: the full method, one ablation per part, Diffusion-QL and its history variants.

Each is an :class:`AgentConfig`, fixed before any run (docs/early-indications.md has the sweep that followed the
full method's choice: it favours n_step 5 and sees no effect of history length on hopper). The d3rlpy baselines
(trajdiff.bench.baselines.BASELINES) are methods too, named bc, td3+bc, iql, cql.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from trajdiff.agent import AgentConfig
from trajdiff.presets import PRESETS


@dataclass(frozen=True)
class Method:
    """A trajdiff method: its algorithm config, and whether it takes the authors' settings for the dataset's type
    where they published some (:meth:`config_for`): Diffusion-QL, the methods that are Diffusion-QL with one
    change, and the trajdiff configurations compared with Diffusion-QL at its own settings, so that those differ in
    their trajectory parts alone."""

    agent: AgentConfig
    authors_settings: bool = False

    def config_for(self, dataset: str) -> AgentConfig:
        """The algorithm config of this method's runs on ``dataset``: with the authors' settings, those of the
        dataset's kind (``hopper-medium-expert.hdf5`` -> preset hopper-medium-expert-v2; kinds they did not
        publish keep the defaults), the method's own eta kept."""
        preset = PRESETS.get(f"{Path(dataset).stem}-v2") if self.authors_settings else None
        if preset is None:
            return self.agent
        return dataclasses.replace(preset.applied_to(self.agent), eta=self.agent.eta)


TRAJDIFF = AgentConfig(history_len=4, n_step=3, expertise_weighting=True)
"""The full method's settings in the suites."""
DIFFUSION_QL = AgentConfig()

METHODS: dict[str, Method] = {
    "trajdiff": Method(TRAJDIFF),
    "no-history": Method(dataclasses.replace(TRAJDIFF, history_len=1)),
    "one-step": Method(dataclasses.replace(TRAJDIFF, n_step=1)),
    "no-expertise": Method(dataclasses.replace(TRAJDIFF, expertise_weighting=False)),
    "diffusion-ql": Method(DIFFUSION_QL, authors_settings=True),
    # imitation only (the critic still picks among the sampled actions)
    "diffusion-ql-eta0": Method(dataclasses.replace(DIFFUSION_QL, eta=0.0), authors_settings=True),
    # partial observability (docs/partial-observability.md): history alone, without n-step or weighting; an 8-step
    # GRU history for the actor (and for the critic too), and the frame-stack baseline
    "history-8": Method(dataclasses.replace(DIFFUSION_QL, history_len=8), authors_settings=True),
    "history-8-critic": Method(dataclasses.replace(DIFFUSION_QL, history_len=8, critic_uses_history=True),
                               authors_settings=True),
    "frames-8": Method(dataclasses.replace(DIFFUSION_QL, history_len=8, history_encoder="frames"),
                       authors_settings=True),
    # multi-step learning (docs/multi-step.md): the full method at the authors' per-dataset settings, with its
    # 3-step critic as it is, as chunks of 3 actions whose critic backs up the logged chunk, or as lambda-returns
    "trajdiff-nstep": Method(TRAJDIFF, authors_settings=True),
    "trajdiff-chunk": Method(dataclasses.replace(TRAJDIFF, action_chunk=3), authors_settings=True),
    "trajdiff-lambda": Method(dataclasses.replace(TRAJDIFF, critic_target="lambda", td_lambda=0.5),
                              authors_settings=True),
}

RECOMMENDED = "trajdiff-nstep"
"""trajdiff's recommended configuration, the grid's method (docs/results.md): the one docs/multi-step.md's
screening rule picks among trajdiff-nstep, trajdiff-chunk and trajdiff-lambda from the committed runs
(tests/test_docs.py checks that they agree)."""


def without_each_part(name: str) -> dict[str, Method]:
    """The components of method ``name``: it with one trajectory part removed, as NAME-no-history (the current
    state only), NAME-one-step (the 1-step critic target, single actions) and NAME-no-expertise."""
    method = METHODS[name]
    one_step = dataclasses.replace(method.agent, n_step=1, action_chunk=1, critic_target="nstep",
                                   td_lambda=AgentConfig.td_lambda)
    return {f"{name}-no-history": dataclasses.replace(method, agent=dataclasses.replace(method.agent, history_len=1)),
            f"{name}-one-step": dataclasses.replace(method, agent=one_step),
            f"{name}-no-expertise": dataclasses.replace(
                method, agent=dataclasses.replace(method.agent, expertise_weighting=False))}


METHODS |= without_each_part(RECOMMENDED)

DEFAULT_METHODS = ("trajdiff", "no-history", "one-step", "no-expertise", "diffusion-ql")

APPROXIMATED = "-approximated"
"""Method modifier: METHOD-approximated is METHOD with the Q-term's action approximated in one step
(--q-action approximated), e.g. diffusion-ql-approximated."""


def find_method(name: str) -> Method | None:
    """A METHODS entry, or one with the APPROXIMATED suffix; None when the name is no trajdiff method."""
    base = name.removesuffix(APPROXIMATED)
    if base not in METHODS or base == name:
        return METHODS.get(name)
    method = METHODS[base]
    return dataclasses.replace(method, agent=dataclasses.replace(method.agent, q_action="approximated"))


def changed_fields(config: AgentConfig) -> dict[str, object]:
    """The fields in which ``config`` differs from the defaults (Diffusion-QL's), by name."""
    default = AgentConfig()
    return {item.name: getattr(config, item.name) for item in dataclasses.fields(config)
            if getattr(config, item.name) != getattr(default, item.name)}
