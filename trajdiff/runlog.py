"""Run logs: progress.csv always (a row per evaluation), TensorBoard beside it."""

from __future__ import annotations

import csv
from pathlib import Path


class RunLogger:
    """Appends rows to ``progress.csv`` and mirrors the numeric ones to TensorBoard.

    On resume, rows past the checkpoint's step (written after the last checkpoint, before a kill)
    are dropped, so the file matches an uninterrupted run.
    """

    def __init__(self, directory: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = directory / "progress.csv"
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.exists():
            with self.path.open() as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
            if rows:
                self.columns = list(rows[0])
                self._rewrite(rows)
            else:
                self.path.unlink()
        elif self.path.exists():
            self.path.unlink()
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: TensorBoard drops the killed run's events past the checkpoint, so no step shows twice
            self.writer = SummaryWriter(str(directory / "tensorboard"),
                                        purge_step=resume_step + 1 if resume_step is not None else None)

    def _rewrite(self, rows: list[dict]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self._rewrite([])
        with self.path.open("a", newline="") as handle:
            # extrasaction: a run resumed by a newer trajdiff keeps its file's columns
            csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key != "step":
                    self.writer.add_scalar(key, value, int(row["step"]))
            self.writer.flush()

    def rows(self) -> list[dict[str, str]]:
        """Every row written so far (this run's and, after a resume, the earlier ones kept)."""
        with self.path.open() as handle:
            return list(csv.DictReader(handle))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
