"""Run logs: progress.csv always (a row per log point), and any of TensorBoard and Weights & Biases beside it.

progress.csv is the record (reports and resumption read it); the others mirror its rows through the
:class:`Logger` protocol, as d3rlpy's logger adapters do. Long work shows a tqdm bar (:func:`progress_bar`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from trajdiff.errors import TrajdiffError
from trajdiff.files import write_csv


class Logger(Protocol):
    """Where a run's rows go besides progress.csv: each row is the update count (``step``) and named numbers."""

    def write(self, row: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """TensorBoard event files in FOLDER/tensorboard; a resumed run first drops the events past its checkpoint
    (TensorBoard's purge_step), so no update shows twice."""

    def __init__(self, directory: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(directory / "tensorboard"),
                                    purge_step=resume_step + 1 if resume_step is not None else None)

    def write(self, row: dict[str, float]) -> None:
        for key, value in row.items():
            if key != "step":
                self.writer.add_scalar(key, value, int(row["step"]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """A Weights & Biases run in FOLDER/wandb, offline unless the WANDB_MODE environment variable says otherwise
    (``wandb sync FOLDER/wandb/offline-run-*`` uploads it later); project WANDB_PROJECT or "trajdiff". Its id comes
    from the folder's path, so a resumed run continues the same W&B run. W&B does not take back what a killed
    process logged past its checkpoint (progress.csv does): the resumed run logs those updates again."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        import wandb  # trajdiff.commands.train checks that it is installed before any work

        run_id = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(mode=os.environ.get("WANDB_MODE", "offline"), dir=directory, id=run_id,
                              project=os.environ.get("WANDB_PROJECT", "trajdiff"), name=directory.name,
                              config=config, resume="allow", settings=wandb.Settings(silent=True, console="off"))

    def write(self, row: dict[str, float]) -> None:
        self.run.log({key: value for key, value in row.items() if key != "step"}, step=int(row["step"]))

    def close(self) -> None:
        self.run.finish()


class RunLogger:
    """Appends rows to ``progress.csv`` and hands each to the other loggers.

    On resume, rows past the checkpoint's step (written after the last checkpoint, before a kill)
    are dropped, so the file matches an uninterrupted run.
    """

    def __init__(self, directory: Path, resume_step: int | None = None, others: list[Logger] | None = None) -> None:
        self.path = directory / "progress.csv"
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.exists():
            rows = self._complete_rows(resume_step)
            if rows:
                self.columns = list(rows[0])
                self._rewrite(rows)
            else:
                self.path.unlink()
        elif self.path.exists():
            self.path.unlink()
        self.others = others or []

    def _complete_rows(self, resume_step: int) -> list[dict[str, str]]:
        """The file's rows up to ``resume_step``. A kill can cut short only a row past the checkpoint (rows are
        written before the checkpoint of their update), so a torn last row goes; one at or before the
        checkpoint means the file was damaged otherwise, and is an error rather than a row of cut values."""
        text = self.path.read_text()
        rows = list(csv.DictReader(text.splitlines()))
        if rows and (not text.endswith("\n") or None in rows[-1].values() or None in rows[-1]):
            torn = rows.pop()
            if torn.get("step", "").isdigit() and int(torn["step"]) <= resume_step:
                raise TrajdiffError(f"{self.path}: the row of update {torn['step']} is cut short, though the "
                                    f"checkpoint (update {resume_step}) was written after it; repair or remove it")
        return [row for row in rows if int(row["step"]) <= resume_step]

    def _rewrite(self, rows: list[dict]) -> None:
        try:
            write_csv(self.path, rows, self.columns)
        except OSError as error:
            raise TrajdiffError(f"cannot write {self.path} ({error.strerror or error})") from None

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self._rewrite([])
        try:
            with self.path.open("a", newline="") as handle:
                # extrasaction: a run resumed by a newer trajdiff keeps its file's columns
                csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        except OSError as error:
            raise TrajdiffError(f"cannot write {self.path} ({error.strerror or error})") from None
        for logger in self.others:
            logger.write(row)

    def rows(self) -> list[dict[str, str]]:
        """Every row written so far (this run's and, after a resume, the earlier ones kept)."""
        with self.path.open() as handle:
            return list(csv.DictReader(handle))

    def close(self) -> None:
        for logger in self.others:
            logger.close()


LOG_REFRESH_S = 60.0
"""How often a progress bar redraws when stderr is not a terminal (a log file, a pipe, a batch job)."""


def progress_bar(iterable: Any = None, **options: Any) -> Any:
    """A tqdm bar that redraws as usual on a terminal and at most once every LOG_REFRESH_S seconds into a log,
    which otherwise gets a line per update."""
    from tqdm import tqdm

    if not sys.stderr.isatty():
        options.setdefault("mininterval", LOG_REFRESH_S)
    return tqdm(iterable, **options)
