"""``load_dataset``: one entry point for every place a dataset can come from."""

from __future__ import annotations

from pathlib import Path

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.formats import read_d4rl_hdf5, read_minari
from trajdiff.data.registry import D4RL_NAME, resolve_d4rl
from trajdiff.errors import TrajdiffError

EMBEDDED_DEFAULT = Path(__file__).resolve().parent.parent / "assets" / "hopper-mixed-v5-small.hdf5"
"""The compact dataset shipped in the package (docs/data.md, "Embedded default dataset")."""


def load_dataset(source: str | Path) -> EpisodeDataset:
    """Load a dataset from a path or an id.

    - an existing path: a D4RL-layout hdf5 file (D4RL's own, or written by ``trajdiff collect``);
    - ``default``: the embedded hopper dataset;
    - a D4RL name (``hopper-medium-v2``): from ``$D4RL_DATASET_DIR`` or ``~/.d4rl/datasets``,
      downloaded when missing and online;
    - a Minari id (``mujoco/hopper/medium-v0``): local store first, downloaded when online.
    Anything else is a one-line :class:`TrajdiffError`.
    """
    text = str(source)
    if text == "default":
        return read_d4rl_hdf5(EMBEDDED_DEFAULT, name="default (hopper-mixed-v5-small)")
    path = Path(text).expanduser()
    if path.is_dir():
        raise TrajdiffError(f"{path} is a folder; give an hdf5 file, a D4RL name or a Minari id")
    if path.exists():
        return read_d4rl_hdf5(path)
    if D4RL_NAME.match(text):
        return read_d4rl_hdf5(resolve_d4rl(text), name=text)
    if "/" in text and not text.endswith((".hdf5", ".h5")) and not text.startswith((".", "/", "~")):
        return read_minari(text)
    raise TrajdiffError(
        f"no dataset at {text!r}: not a file, not a D4RL name (e.g. hopper-medium-v2) "
        "and not a Minari id (e.g. mujoco/hopper/medium-v0)"
    )
