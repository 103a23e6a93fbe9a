"""Run logs: progress.csv always (a row per evaluation), TensorBoard beside it."""

from __future__ import annotations

import csv
from pathlib import Path

from trajdiff.errors import TrajdiffError
from trajdiff.utils import write_csv


class RunLogger:
    """Appends rows to ``progress.csv`` and mirrors the numeric ones to TensorBoard.

    On resume, rows past the checkpoint's step (written after the last checkpoint, before a kill)
    are dropped, so the file matches an uninterrupted run.
    """

    def __init__(self, directory: Path, resume_step: int | None = None, tensorboard: bool = True) -> None:
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
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: TensorBoard drops the killed run's events past the checkpoint, so no step shows twice
            self.writer = SummaryWriter(str(directory / "tensorboard"),
                                        purge_step=resume_step + 1 if resume_step is not None else None)

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
