"""``trajdiff export``: a trained member's policy as a torch.export program, usable without trajdiff."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch
import tyro

from trajdiff.envs import observed_columns
from trajdiff.errors import TrajdiffError, require
from trajdiff.export import export_policy
from trajdiff.provenance import library_versions
from trajdiff.run_folder import SavedRun, check_creatable

REFERENCE = Path(__file__).resolve().parent.parent / "assets" / "run_policy.py"
EXPORTED_FILES = ("policy.pt2", "policy.json", "run_policy.py")


@dataclass(frozen=True)
class ExportConfig:
    """Export one member of a trained run: policy.pt2 (torch.export), policy.json, and run_policy.py."""

    run: Annotated[Path, tyro.conf.Positional]
    """A run folder (with checkpoint.pt, or the seed-S folders of a --seeds run) or a checkpoint file."""
    out: Path = Path("runs/export")
    """Folder to write policy.pt2, policy.json and run_policy.py into."""
    overwrite: bool = False
    """Replace those files where --out already has them (without it, an export never replaces a file)."""
    member: int = 0
    """Which member of a --seeds run (0: the first)."""

    def __post_init__(self) -> None:
        require(self.member >= 0, "--member must be at least 0")


def run_export(config: ExportConfig) -> None:
    run = SavedRun.read(config.run)
    if config.member >= len(run.folders):
        raise TrajdiffError(f"{config.run} has {len(run.folders)} member(s); --member {config.member} is not one")
    check_creatable(config.out)
    existing = [name for name in EXPORTED_FILES if (config.out / name).exists()]
    if existing and not config.overwrite:
        raise TrajdiffError(f"{config.out} already has {', '.join(existing)}; give another --out, or --overwrite")
    agent, _ = run.agent(torch.device("cpu"))  # exported for the CPU; the program moves like any module
    program = export_policy(agent, config.member)
    member_config = agent.configs[config.member]
    columns = observed_columns(run.env_id, run.observe)
    spec = {
        "env_id": run.env_id, "seed": run.seeds[config.member], "checkpoint_step": run.checkpoints[0]["step"],
        "observe": run.observe, "observation_columns": [columns.start, columns.stop],
        "history_len": member_config.history_len, "observation_dim": agent.observation_dim,
        "action_dim": agent.action_dim, "action_chunk": member_config.action_chunk,
        "diffusion_steps": member_config.diffusion_steps,
        "action_candidates": member_config.action_candidates, "max_action": agent.max_action,
        "inputs": {"history": "(E, history_len, observation_dim) float32, oldest first, zero-padded before the "
                              "episode's start", "mask": "(E, history_len) bool, True on real steps",
                   "noise": "(diffusion_steps, E, action_candidates, action_chunk * action_dim) float32, "
                            "standard normal",
                   "uniform": "(E, 1) float32, uniform in [0, 1)"},
        "output": "(E, action_chunk, action_dim) float32: a chunk of actions, played open-loop",
        "versions": library_versions(),
    }
    write_export(program, spec, config.out)
    print(f"trajdiff: exported member {config.member} (seed {spec['seed']}, step {spec['checkpoint_step']}) of "
          f"{config.run} to {config.out}: policy.pt2, policy.json, run_policy.py")


STAGING = ".export.tmp"
"""Where an export is written before its files replace any in --out: a crash or a full disk leaves no partial
policy.pt2 that would block the next export (which removes a staging folder left behind)."""


def write_export(program: torch.export.ExportedProgram, spec: dict, out: Path) -> None:
    """Write the three files into ``out``, each whole or not at all; first check that they fit on the disk."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    weights = sum(tensor.numel() * tensor.element_size() for tensor in program.state_dict.values())
    needed, free = 2 * weights + 2**20, shutil.disk_usage(out).free  # the program's graph and the files besides
    if needed > free:
        raise TrajdiffError(f"cannot export into {out}: about {needed / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB "
                            "free on its disk")
    try:
        staging.mkdir()
        torch.export.save(program, str(staging / "policy.pt2"))
        (staging / "policy.json").write_text(json.dumps(spec, indent=2) + "\n")
        shutil.copy(REFERENCE, staging / "run_policy.py")
        for name in EXPORTED_FILES:
            os.replace(staging / name, out / name)
    except (OSError, RuntimeError) as error:  # torch's writer reports a full disk as a RuntimeError
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise TrajdiffError(f"cannot write the export into {out} ({reason})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
