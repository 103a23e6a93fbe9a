import csv
import time

import numpy as np
import pytest

from trajdiff.bench.report import interquartile_mean
from trajdiff.cli import main


def test_smoke_suite_writes_results_and_resumes(tmp_path):
    out = tmp_path / "bench"
    main(["bench", "--suite", "smoke", "--budget", "smoke", "--out", str(out), "--device", "cpu"])
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["method"] for row in rows} == {"trajdiff", "no-history", "one-step", "no-expertise", "diffusion-ql"}
    for row in rows:
        assert row["dataset"] == "default" and row["seed"] == "0" and row["updates"] == "40"
        assert np.isfinite(float(row["normalized_score"]))
    assert "| trajdiff | default |" in (out / "results.md").read_text()
    assert (out / "learning-curves.png").stat().st_size > 0
    started = time.time()  # a second call finds every run finished and only re-aggregates
    main(["bench", "--suite", "smoke", "--budget", "smoke", "--out", str(out), "--device", "cpu"])
    assert time.time() - started < 10


def test_interquartile_mean_known_answer():
    iqm, low, high = interquartile_mean(np.array([[1.0], [2.0], [3.0], [4.0]]), reps=200)
    assert iqm == pytest.approx(2.5)
    assert low <= iqm <= high


def test_bench_errors(tmp_path, capsys):
    for arguments, message in ((["--suite", "nope"], "unknown suite"),
                               (["--suite", "hopper", "--data-dir", str(tmp_path)], "missing dataset(s)"),
                               (["--methods", "magic"], "unknown method(s) magic"),
                               (["--seeds", "0"], "--seeds must be at least 1")):
        with pytest.raises(SystemExit):
            main(["bench", *arguments, "--out", str(tmp_path / "b")])
        assert message in capsys.readouterr().err
