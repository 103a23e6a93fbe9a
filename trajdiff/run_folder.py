"""Run folders: checked before any work, locked while a process trains in them, and read back into an agent."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from trajdiff.agent import AgentConfig, DiffusionQLAgent
from trajdiff.agent_state import load_member_states
from trajdiff.checkpoint import CHECKPOINT_NAME, load_checkpoint, member_folders
from trajdiff.data.episodes import EpisodeDataset
from trajdiff.envs import Observe, make_environment
from trajdiff.errors import TrajdiffError
from trajdiff.files import nearest_existing, topmost_missing

LOCK_NAME = ".lock"
EXPERTISE_FIELDS = tuple(item.name for item in dataclasses.fields(AgentConfig) if item.name.startswith("expertise_"))
RUN_FILES = {"config.json", "progress.csv", LOCK_NAME, "tensorboard", "wandb", "expertise.json", "expertise.png",
             "learning-curve.png", "bench.log", CHECKPOINT_NAME}
"""What a run folder holds: a folder with only these (a run killed before its first checkpoint) may be reused."""


def is_temporary_run_file(name: str) -> bool:
    """Whether ``name`` is the temporary file of an interrupted atomic write of a run file
    (``files.staged_write`` names it ``.<file>.<random>.tmp``): a kill leaves one, and it is the run's."""
    return name.endswith(".tmp") and any(name.startswith(f".{run_file}.") for run_file in RUN_FILES)


def check_same_data(source: str, digest: str, transitions: int, saved: dict[str, Any], run: Path,
                    going_on: str) -> None:
    """A run goes on (resumed with ``going_on`` "resume", evaluated with "evaluate") only on the data it trained
    on, as its checkpoint's ``dataset`` record (sha256, transitions) says; else a one-line refusal."""
    if (digest, transitions) != (saved["sha256"], saved["transitions"]):
        raise TrajdiffError(f"{source} is not the data {run} trained on (now {transitions:,} transitions, sha256 "
                            f"{digest[:12]}...; then {saved['transitions']:,}, {saved['sha256'][:12]}...); "
                            f"{going_on} with --accept-changed-dataset to go on with it")


def check_creatable(path: Path) -> None:
    """Raise unless ``path`` is a folder, or one that can be made, and writable (nothing is created)."""
    if path.exists() and not path.is_dir():
        raise TrajdiffError(f"{path} is a file, not a run folder; give a folder with --out / --resume")
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise TrajdiffError(f"cannot create {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrajdiffError(f"cannot write to {existing} (permission denied), so not to {path}")


def check_reusable(path: Path) -> None:
    """Raise unless ``path`` is new, empty, or holds only a trajdiff run's files: a new run never replaces
    files it did not write (and ``--out ''`` or ``.`` would write into the working directory)."""
    if str(path) in ("", "."):
        raise TrajdiffError("--out names no folder (it is empty or '.'); give the run a folder of its own")
    if not path.is_dir():
        return
    foreign = sorted(entry.name for entry in path.iterdir()
                     if entry.name not in RUN_FILES and not is_temporary_run_file(entry.name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise TrajdiffError(f"{path} holds files that are not a trajdiff run's ({shown}); give --out a new or "
                            "empty folder")


class RunFolder:
    """A member's folder while a process trains in it: created, locked (``.lock`` holds the pid), cleaned.

    The lock is an advisory ``flock``: the kernel drops it when the process dies, even by kill -9, so a
    killed run never leaves a stale lock, while a second live process gets a one-line error naming the
    holder. Temporary files of atomic writes that a kill left behind are removed on opening, and so are the files of
    a run killed before its first checkpoint (``removed`` names them). A run that fails
    (an error, Ctrl-C) before its first checkpoint leaves nothing behind: :meth:`close` removes what it made.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = topmost_missing(path) or path  # the topmost folder this run makes
        self.existing = set(path.iterdir()) if path.is_dir() else None
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock = open(path / LOCK_NAME, "a+")  # noqa: SIM115 - held for the run's lifetime
        except OSError as error:
            raise TrajdiffError(f"cannot create run folder {path} ({error.strerror or error})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "unknown"
            self._lock.close()
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise TrajdiffError(f"{path} is in use by another trajdiff process (pid {holder}); wait for it "
                                    "or choose another --out") from None
            raise TrajdiffError(f"cannot lock {path} ({error.strerror})") from None
        try:
            self._lock.seek(0)
            self._lock.truncate()
            self._lock.write(f"{os.getpid()}\n")
            self._lock.flush()
        except OSError as error:  # a full disk: put the folder back as it was
            self.removed = []
            self.close(failed=True)
            raise TrajdiffError(f"cannot write {path / LOCK_NAME} ({error.strerror or error})") from None
        for orphan in path.iterdir():
            if is_temporary_run_file(orphan.name) and orphan.is_file():
                orphan.unlink(missing_ok=True)
        self.removed = [] if (path / CHECKPOINT_NAME).exists() else self._remove_leftovers()
        if self.existing is not None:
            self.existing -= {path / name for name in self.removed}

    def _remove_leftovers(self) -> list[str]:
        """The files of an earlier run that died before its first checkpoint (it cannot be resumed): a new run
        starts clean instead of mixing its rows, scalars and expertise files with the dead run's."""
        removed = []
        for name in sorted(RUN_FILES - {LOCK_NAME, CHECKPOINT_NAME, "bench.log"}):
            entry = self.path / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()
            else:
                continue
            removed.append(name)
        return removed

    def close(self, failed: bool = False) -> None:
        """Release the lock (the file stays; holding it is what counts). After a failure, a folder without a
        checkpoint is put back as it was: made by this run, it goes; else the files this run added go."""
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
        if not failed or (self.path / CHECKPOINT_NAME).exists():
            return
        if self.existing is None:
            shutil.rmtree(self.created, ignore_errors=True)
            return
        for entry in set(self.path.iterdir()) - self.existing:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def saved_agent_config(values: dict[str, Any]) -> AgentConfig:
    """The AgentConfig of a saved run config (config.json, or a checkpoint's copy). Configs saved before the
    expertise fields joined the algorithm's config hold them beside it, and are read so."""
    moved = {name: values[name] for name in EXPERTISE_FIELDS if name in values}
    return AgentConfig(**{**values["agent"], **moved})


def agent_for_environment(configs: list[AgentConfig], seeds: list[int], total_updates: int, env_id: str,
                          device: torch.device, dataset: EpisodeDataset | None = None,
                          observe: Observe = "all") -> DiffusionQLAgent:
    """An agent of these members for ``env_id``'s spaces (as ``observe`` shows them); given a dataset, first
    check that the data fits them."""
    probe = make_environment(env_id, observe)
    spaces = (probe.observation_space, probe.action_space)
    if not all(isinstance(space, gym.spaces.Box) and len(space.shape) == 1 for space in spaces):
        probe.close()
        raise TrajdiffError(f"{env_id} has {type(probe.action_space).__name__} actions and "
                            f"{type(probe.observation_space).__name__} observations; trajdiff needs flat continuous "
                            "(Box) observations and actions")
    observation_dim, action_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    max_action = float(probe.action_space.high[0])
    probe.close()
    if dataset is not None:
        dataset.check_environment(observation_dim, action_dim, env_id, max_action)
    return DiffusionQLAgent(observation_dim, action_dim, max_action, configs, total_updates, device, seeds)


@dataclass(frozen=True)
class SavedRun:
    """A trained run read back: its members' folders, checkpoints and evaluation environment."""

    folders: list[Path]
    checkpoints: list[dict]
    env_id: str

    @classmethod
    def read(cls, run: Path) -> SavedRun:
        """A run folder (one member, or the seed-S members of a --seeds run) or one checkpoint file."""
        folders = member_folders(run)
        checkpoints = [load_checkpoint(folder) for folder in folders]
        return cls(folders, checkpoints, checkpoints[0]["env_id"])

    @property
    def observe(self) -> Observe:
        """The observation entries the run was trained on (docs/partial-observability.md)."""
        return self.checkpoints[0]["config"].get("observe", "all")

    @property
    def seeds(self) -> list[int]:
        return [checkpoint["config"]["seed"] for checkpoint in self.checkpoints]

    def agent(self, device: torch.device) -> tuple[DiffusionQLAgent, list[str]]:
        """The trained agent on ``device`` (no dataset needed), and any notes on its random streams."""
        configs = [saved_agent_config(checkpoint["config"]) for checkpoint in self.checkpoints]
        total_updates = self.checkpoints[0]["config"]["schedule"]["updates"]
        agent = agent_for_environment(configs, self.seeds, total_updates, self.env_id, device, observe=self.observe)
        return agent, load_member_states(agent, [checkpoint["agent"] for checkpoint in self.checkpoints])
