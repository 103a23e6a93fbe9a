"""Readers and writers for the two on-disk formats: D4RL's hdf5 layout and Minari datasets."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from trajdiff.data.episodes import ARRAY_KEYS, REQUIRED_KEYS, EpisodeDataset
from trajdiff.errors import TrajdiffError

# Per-episode arrays in metadata/ that trajdiff reads back into EpisodeDataset.episode_metadata.
EPISODE_METADATA_KEYS = ("episode_source", "episode_returns")


def read_d4rl_hdf5(path: Path, name: str | None = None) -> EpisodeDataset:
    """Load a file in D4RL's hdf5 layout (D4RL's own files and what ``trajdiff collect`` writes).

    Reads the root arrays (observations, actions, rewards, terminals, timeouts and, when present,
    next_observations); ``metadata/*`` scalars become ``dataset.metadata`` and the per-episode
    arrays in ``metadata/`` (episode_source, episode_returns) become ``episode_metadata``.
    ``infos/*`` is not loaded: training does not use it.
    """
    import h5py

    name = name or path.name
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise TrajdiffError(f"{path}: not a readable hdf5 file ({error})") from None
    with handle:
        arrays = {key: handle[key][()] for key in (*REQUIRED_KEYS, "next_observations")
                  if isinstance(handle.get(key), h5py.Dataset)}
        metadata: dict[str, Any] = {}
        episode_metadata: dict[str, np.ndarray] = {}
        group = handle.get("metadata")
        if isinstance(group, h5py.Group):
            for key, item in group.items():
                if not isinstance(item, h5py.Dataset):
                    continue  # e.g. D4RL's metadata/policy/* weights
                value = item[()]
                if key in EPISODE_METADATA_KEYS:
                    episode_metadata[key] = np.asarray(value)
                else:
                    metadata[key] = value.decode() if isinstance(value, bytes) else _plain(value)
    return EpisodeDataset.from_arrays(arrays, name=name, metadata=metadata,
                                      episode_metadata=episode_metadata)


def write_d4rl_hdf5(
    path: Path,
    dataset: EpisodeDataset,
    infos: dict[str, np.ndarray] | None = None,
    compression: str | None = "gzip",
) -> None:
    """Write ``dataset`` in D4RL's hdf5 layout, atomically.

    Root arrays as D4RL stores them (float32 observations/actions/rewards, bool terminals/timeouts),
    ``infos/<key>`` for each entry of ``infos`` and ``metadata/<key>`` for dataset metadata and
    per-episode metadata.
    """
    import h5py

    from trajdiff.files import atomic_write

    def write(temporary: Path) -> None:
        with h5py.File(temporary, "w") as handle:
            for key in ARRAY_KEYS:
                handle.create_dataset(key, data=getattr(dataset, key), compression=compression)
            for key, values in (infos or {}).items():
                handle.create_dataset(f"infos/{key}", data=values, compression=compression)
            for key, value in dataset.metadata.items():
                handle.create_dataset(f"metadata/{key}", data=value)
            for key, values in dataset.episode_metadata.items():
                handle.create_dataset(f"metadata/{key}", data=values)

    atomic_write(path, write)


def minari_host() -> str:
    """The host Minari downloads from: its default Hugging Face remote, or the one MINARI_REMOTE names."""
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    return "storage.googleapis.com" if remote.startswith("gcp://") else "huggingface.co"


def check_reachable(host: str, dataset_id: str, local: Path, timeout_s: float = 5.0) -> None:
    """One connection attempt before a download: offline, a one-line error in seconds, not the hub client's
    half-minute of retries."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError as error:
        raise TrajdiffError(f"Minari dataset {dataset_id!r} is not available locally ({local}) and could not be "
                            f"downloaded: the dataset server cannot be reached: no network? ({host}: {error})"
                            ) from None


def read_minari(dataset_id: str, download: bool = True) -> EpisodeDataset:
    """Load a Minari dataset by id, from the local store first, downloading when allowed.

    Each Minari episode holds T+1 observations; its steps become T flat rows with
    ``next_observations`` = observations[1:], terminals = terminations, timeouts = truncations.
    An episode that ends in neither is marked a timeout at its last step (it was cut short).
    """
    try:
        import minari
    except ImportError:
        raise TrajdiffError("Minari datasets need the minari package: pip install 'trajdiff[minari]'") from None
    local = minari.storage.get_dataset_path(dataset_id)
    if download and not local.exists():
        check_reachable(minari_host(), dataset_id, local)
    try:
        source = minari.load_dataset(dataset_id, download=download)
    except Exception as error:  # minari raises several types for unknown / unreachable ids
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, ImportError):
            reason = f"downloading needs Minari's hub client ({text}): pip install 'trajdiff[minari]'"
        elif "Name or service not known" in text or "onnect" in type(error).__name__ + text:
            reason = f"the dataset server cannot be reached: no network? ({text})"
        else:
            reason = text
        raise TrajdiffError(f"Minari dataset {dataset_id!r} is not available locally ({local}) and could not "
                            f"be downloaded: {reason}") from None
    columns: dict[str, list[np.ndarray]] = {key: [] for key in (*REQUIRED_KEYS, "next_observations")}
    for episode in source.iterate_episodes():
        steps = len(episode.actions)
        if steps == 0:
            raise TrajdiffError(f"{dataset_id}: episode {episode.id} has zero steps")
        observations = np.asarray(episode.observations)
        if not isinstance(episode.observations, np.ndarray) or len(observations) != steps + 1:
            raise TrajdiffError(f"{dataset_id}: episode {episode.id} needs {steps + 1} flat observations")
        terminals = np.asarray(episode.terminations, dtype=bool)
        timeouts = np.asarray(episode.truncations, dtype=bool)
        timeouts[-1] |= not terminals[-1]
        columns["observations"].append(observations[:-1])
        columns["next_observations"].append(observations[1:])
        columns["actions"].append(np.asarray(episode.actions))
        columns["rewards"].append(np.asarray(episode.rewards))
        columns["terminals"].append(terminals)
        columns["timeouts"].append(timeouts)
    if not columns["observations"]:
        raise TrajdiffError(f"{dataset_id}: the dataset has no episodes")
    arrays = {key: np.concatenate(values) for key, values in columns.items()}
    metadata: dict[str, Any] = {}
    env_spec = source.spec.env_spec
    if env_spec is not None:
        metadata["env_id"] = env_spec.id
    return EpisodeDataset.from_arrays(arrays, name=dataset_id, metadata=metadata)


def write_minari(dataset: EpisodeDataset, dataset_id: str, env_id: str) -> None:
    """Write ``dataset`` as a local Minari dataset (under ``$MINARI_DATASETS_PATH``)."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for index, (start, end) in enumerate(zip(dataset.episode_starts, dataset.episode_ends)):
        observations = np.concatenate([dataset.observations[start:end], dataset.next_observations[end - 1:end]])
        buffers.append(EpisodeBuffer(
            id=index, observations=observations, actions=dataset.actions[start:end],
            rewards=dataset.rewards[start:end], terminations=dataset.terminals[start:end],
            truncations=dataset.timeouts[start:end], infos={},
        ))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is set to None.*", category=UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=buffers, env=gym.make(env_id), algorithm_name="trajdiff collect",
            description=json.dumps({key: _plain(value) for key, value in dataset.metadata.items()}, default=str),
        )


def _plain(value: Any) -> Any:
    """hdf5/numpy scalars -> Python values, so metadata prints and serialises cleanly."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value
