"""Figures of the library's results (matplotlib stays out of the library modules themselves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trajdiff.errors import TrajdiffError
from trajdiff.expertise import ExpertiseModel
from trajdiff.files import atomic_write


def source_names(metadata: dict[str, object]) -> list[str]:
    """The names of a dataset's episode sources, as its file records them (``episode_source_names``)."""
    names = metadata.get("episode_source_names")
    return str(names).split(",") if names else []


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only, no display), imported when a figure is first drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_figure_path(path: Path) -> None:
    """One-line error, before any work, for a figure file matplotlib cannot write (by its extension)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix.lstrip(".").lower() not in formats:
        raise TrajdiffError(f"cannot draw {path}: matplotlib writes {', '.join(sorted(formats))} files "
                            "(by the extension)")


def plot_expertise(model: ExpertiseModel, path: Path, sources: np.ndarray | None = None,
                   names: list[str] | None = None) -> None:
    """Histogram of p(expert) per episode; one colour per recorded source, named as the data names it."""
    plt = pyplot()

    names = names or []
    figure, axis = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 21)
    if sources is None:
        axis.hist(model.episode_expertise, bins=bins, color="tab:blue")
    else:
        for label in np.unique(sources):
            name = names[label] if label < len(names) else "source"
            axis.hist(model.episode_expertise[sources == label], bins=bins, alpha=0.7, label=f"{name} ({label})")
        axis.legend()
    axis.set_xlabel("p(expert | episode)")
    axis.set_ylabel("episodes")
    axis.set_title(f"{model.components} component(s) selected by BIC")
    figure.tight_layout()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(figure, Path(path))
    except OSError as error:
        raise TrajdiffError(f"cannot write the histogram {path} ({error.strerror or error})") from None
    finally:
        plt.close(figure)


def save_figure(figure: Any, path: Path) -> None:
    """Save through a temporary file: a full disk leaves the earlier figure or none, never an empty one."""
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format=path.suffix.lstrip(".") or "png"))


def plot_progress(progress: list[dict[str, str]], path: Path, title: str) -> None:
    """A run's learning curve: normalised score (and BC loss) against updates, from its progress.csv rows."""
    plt = pyplot()

    steps = [int(row["step"]) for row in progress]
    figure, (score_axis, loss_axis) = plt.subplots(1, 2, figsize=(9, 3.2))
    score_axis.plot(steps, [float(row["normalized_score"]) for row in progress], marker="o")
    score_axis.set_xlabel("updates")
    score_axis.set_ylabel("normalised score")
    loss_axis.plot(steps, [float(row["bc_loss"]) for row in progress], marker="o", color="tab:orange")
    loss_axis.set_xlabel("updates")
    loss_axis.set_ylabel("BC (denoising) loss")
    figure.suptitle(title)
    figure.tight_layout()
    try:
        save_figure(figure, Path(path))
    except OSError as error:
        raise TrajdiffError(f"cannot write the learning curve {path} ({error.strerror or error})") from None
    finally:
        plt.close(figure)
