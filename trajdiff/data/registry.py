"""Dataset ids -> files and environments, D4RL reference returns and normalised scores."""

from __future__ import annotations

import os
import re
from pathlib import Path

from trajdiff.errors import TrajdiffError

# D4RL infos.py: score = 100 * (return - REF_MIN_SCORE) / (REF_MAX_SCORE - REF_MIN_SCORE).
REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}

# Gymnasium class name for each locomotion family.
GYMNASIUM_NAMES = {"hopper": "Hopper", "halfcheetah": "HalfCheetah", "walker2d": "Walker2d", "ant": "Ant"}

D4RL_NAME = re.compile(
    r"^(?P<family>hopper|halfcheetah|walker2d|ant)-"
    r"(?P<kind>random|medium|expert|medium-replay|medium-expert|full-replay)-v(?P<version>[0-2])$"
)
D4RL_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v{version}/{file}"

# SHA-256 of the published v2 files (TensorFlow Datasets' checksums), checked after a download.
D4RL_SHA256 = {
    "hopper_random-v2.hdf5": "63103ef7059db4c0819bd054f4e83ff339030b50bcdb46bdbe50385f234b5054",
    "hopper_medium-v2.hdf5": "5bdf1bc4a713c82941de44633df669b36c89850b652a25985166796d25cf71a0",
    "hopper_medium_replay-v2.hdf5": "e121c5f7c9857a307baa9edc6a2c3b48e85fedb9ac316ecddd0f48ca7ef4e39b",
    "hopper_medium_expert-v2.hdf5": "9d51ad87f8c905be3880d84c6140bcdb7fbf39a19e046a237f238ba34fec9e26",
    "hopper_expert-v2.hdf5": "01aa219a5f8eea5e639eccdc636ec2bf40e317159a95cf4bf6e985f16909941b",
    "halfcheetah_random-v2.hdf5": "25407aef85b5d16c0f36b4149341edb4acc6a9e88c1db529b2de19e7464874ba",
    "halfcheetah_medium-v2.hdf5": "41324e8487a9556d8cfa4538827f8937f4d63dae3030825ebc9f3a726ed08ca0",
    "halfcheetah_medium_replay-v2.hdf5": "48d494a4770c11f48260736dec090b78bdca8375647ed4d24bfa5b6610c7f683",
    "halfcheetah_medium_expert-v2.hdf5": "015db75dae5bbe8e94029b71fa0bafc2073365df0c94744e71031189f3f79c06",
    "halfcheetah_expert-v2.hdf5": "d9fe53bb994eb1e20a99b4fa3412cd76a1bb7966a7ff55e0fcbdd6081bd2965f",
    "walker2d_random-v2.hdf5": "4e863bb6090cf4a461548bd470564b32f1ae5b32ef3085f816b2ede7f092e7fa",
    "walker2d_medium-v2.hdf5": "cf00f43add04c17fdfc2958dd581dea0851b2e5bedbe6fda073758a8f841aeda",
    "walker2d_medium_replay-v2.hdf5": "e75de96a4f77acf7d4e0d6fdf0d7ccb177c26c44bb4388e4fd99f543ccfa18db",
    "walker2d_medium_expert-v2.hdf5": "6b8d7f868c45bbaedf460be797fb7271b46dee6ebe45fe7a64319f2005b59a04",
    "walker2d_expert-v2.hdf5": "2985dc3d436a8baa10e8f43f946fe1d7c6337a4e4fbc65def70618093b18c59a",
}


def environment_family(name: str) -> str | None:
    """The locomotion family named by an env id, D4RL name, Minari id or file name, else None.

    ``Hopper-v5``, ``hopper-medium-v2``, ``mujoco/hopper/medium-v0`` and ``hopper-medium.hdf5``
    all give ``hopper``.
    """
    lowered = name.lower()
    # halfcheetah before any shorter family that could be its substring; no family nests today.
    for family in sorted(GYMNASIUM_NAMES, key=len, reverse=True):
        if re.search(rf"(^|[/_\-.]){family}([/_\-.]|$)", lowered):
            return family
    return None


def normalized_score(env: str, undiscounted_return: float) -> float:
    """D4RL's normalised score, 100 * (return - random) / (expert - random).

    ``env`` is anything :func:`environment_family` understands (``Hopper-v5``, ``hopper``, ...).
    """
    family = environment_family(env)
    if family is None:
        raise TrajdiffError(f"no D4RL reference returns for {env!r} (known: {', '.join(REFERENCE_RETURNS)})")
    low, high = REFERENCE_RETURNS[family]
    return 100.0 * (undiscounted_return - low) / (high - low)


def default_environment(dataset_name: str) -> str | None:
    """The Gymnasium environment that fairly evaluates a dataset, from its name alone.

    D4RL names were recorded with gym's mujoco-py classes, whose layout, rewards and termination
    Gymnasium's ``-v4`` keeps, so they map to ``-v4``. Everything else (Minari ids, data trajdiff
    collects itself) maps to ``-v5``. A file's own ``metadata/env_id`` takes precedence over this.
    """
    family = environment_family(dataset_name)
    if family is None:
        return None
    version = 4 if D4RL_NAME.match(dataset_name) else 5
    return f"{GYMNASIUM_NAMES[family]}-v{version}"


def d4rl_directory() -> Path:
    """Where D4RL keeps its files: ``$D4RL_DATASET_DIR`` or ``~/.d4rl/datasets``."""
    return Path(os.environ.get("D4RL_DATASET_DIR", Path.home() / ".d4rl" / "datasets")).expanduser()


def d4rl_file_name(name: str) -> str:
    """D4RL's file name for a dataset name: ``hopper-medium-replay-v2`` -> ``hopper_medium_replay-v2.hdf5``."""
    match = D4RL_NAME.match(name)
    assert match is not None
    kind = match["kind"].replace("-", "_")
    return f"{match['family']}_{kind}-v{match['version']}.hdf5"


def resolve_d4rl(name: str) -> Path:
    """The local file of a D4RL dataset name, downloading it when the network allows.

    Raises a one-line :class:`TrajdiffError` that says where to put the file when it is neither
    present nor downloadable.
    """
    file_name = d4rl_file_name(name)
    directory = d4rl_directory()
    for candidate in (directory / file_name, directory / f"{name}.hdf5"):
        if candidate.is_file():
            check_published(candidate, file_name, name)
            return candidate
    url = D4RL_URL.format(version=D4RL_NAME.match(name)["version"], file=file_name)  # type: ignore[index]
    target = directory / file_name
    try:
        _download(url, target)
    except OSError as error:
        raise TrajdiffError(
            f"D4RL dataset {name} is not in {directory} and could not be downloaded ({error}); "
            f"download {url} and save it as {target} (or set D4RL_DATASET_DIR)"
        ) from None
    return target


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def check_published(path: Path, file_name: str, name: str) -> None:
    """A file found under a D4RL name must be the file D4RL published (its SHA-256): scores under D4RL's name
    mean D4RL's data. Another file is still readable by its path, as any hdf5 file."""
    expected = D4RL_SHA256.get(file_name)
    if expected is None:
        return
    found = file_sha256(path)
    if found != expected:
        raise TrajdiffError(f"{path} is not D4RL's {name} (sha256 {found[:12]}..., published {expected[:12]}...); "
                            f"download it again, or give the file's path (--dataset {path}) to train on it as it is")


def _download(url: str, target: Path) -> None:
    import hashlib
    import urllib.request

    from trajdiff.files import atomic_write
    from trajdiff.runlog import progress_bar

    with urllib.request.urlopen(url, timeout=30) as response:  # offline: fails before any folder is made

        def fetch(temporary: Path) -> None:
            digest = hashlib.sha256()
            with temporary.open("wb") as out:
                total = int(response.headers.get("Content-Length", 0)) or None
                with progress_bar(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
            expected = D4RL_SHA256.get(target.name)
            if expected is not None and digest.hexdigest() != expected:
                raise OSError(f"checksum mismatch for {url}")

        atomic_write(target, fetch)
