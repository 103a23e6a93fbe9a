"""The data layer: episodes in memory, the formats they come from, and the window sampler."""

from trajdiff.data.episodes import EpisodeDataset
from trajdiff.data.formats import read_d4rl_hdf5, read_minari, write_d4rl_hdf5, write_minari
from trajdiff.data.load import EMBEDDED_DEFAULT, load_dataset
from trajdiff.data.registry import default_environment, environment_family, normalized_score
from trajdiff.data.sampler import TrajectorySampler, WindowBatch

__all__ = [
    "EMBEDDED_DEFAULT",
    "EpisodeDataset",
    "TrajectorySampler",
    "WindowBatch",
    "default_environment",
    "environment_family",
    "load_dataset",
    "normalized_score",
    "read_d4rl_hdf5",
    "read_minari",
    "write_d4rl_hdf5",
    "write_minari",
]
