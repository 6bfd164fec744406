"""Fault injection, reading side (issue #21, items 6 and 7): `study report` on a damaged or foreign table is one line,
on a folder whose trial folder was deleted it reports what the folders hold now, an unreadable encoder file stops
the study before anything is written, a dry run of a huge grid answers in seconds, and the progress line counts a
retried trial once."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from helpers import tiny_spec, write_spec
from study.cli import app


def _one_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.mark.slow
def test_report_reads_the_trial_folders_and_refuses_damaged_or_foreign_tables(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0], "seed": [0, 1, 2]}))
    out = tmp_path / "tiny"
    assert CliRunner().invoke(app, ["run", str(path)]).exit_code == 0
    # a trial folder is deleted: the report now says that trial is pending (the old tables said finished)
    gone = sorted((out / "trials").iterdir())[0]
    shutil.rmtree(gone)
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    trials = pd.read_parquet(out / "trials.parquet").set_index("run_key")
    assert trials.loc[gone.name, "status"] == "pending" and (trials["status"] == "finished").sum() == 2
    assert "1 trial(s) not finished" in (out / "report" / "report.md").read_text()
    # a damaged table beside the trial folders is rebuilt from them
    (out / "trials.parquet").write_bytes(b"PAR1 not really a parquet file")
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0
    assert len(pd.read_parquet(out / "trials.parquet")) == 3

    # tables with no trial folders to rebuild them from: damaged → one line naming the file
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(out / "per_image.parquet", bare)
    (bare / "trials.parquet").write_bytes(b"PAR1 not really a parquet file")
    line = _one_line(CliRunner().invoke(app, ["report", str(bare)]))
    assert str(bare / "trials.parquet") in line and "not a readable parquet table" in line
    # a foreign table → one line naming what is missing (it was "error: status")
    pd.DataFrame({"patient": ["L067"], "kvp": [120]}).to_parquet(bare / "trials.parquet")
    line = _one_line(CliRunner().invoke(app, ["report", str(bare)]))
    assert "not a table written by `study run`" in line and "status" in line and "run_key" in line
    assert not (bare / "report").exists()


def test_an_encoder_file_of_random_bytes_stops_the_study_before_anything_is_written(tmp_path):
    junk = tmp_path / "enc.pth"
    junk.write_bytes(bytes(range(256)) * 16)
    raw = tiny_spec(tmp_path, encoders={"mine": {"source": "file", "path": str(junk)}},
                    factors={"pretraining": ["mine"], "lam": [0.1]})
    res = subprocess.run([sys.executable, "-m", "study", "run", str(write_spec(tmp_path, raw))],
                         capture_output=True, text=True, timeout=120)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1 and str(junk) in lines[0], res.stderr
    assert "not a readable torch state_dict" in lines[0]
    assert not (tmp_path / "tiny").exists()  # no study.yaml, grid.json or data/ left behind


def test_a_dry_run_of_a_huge_grid_answers_in_seconds(tmp_path):
    lams = [round(i * 1e-5, 5) for i in range(50_000)]
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": lams, "seed": [0]}))
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "study", "run", str(path), "--dry-run"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"})
    seconds = time.perf_counter() - t
    assert res.returncode == 0, res.stderr
    assert "50000 trials (50000 configurations × 1 seeds)" in res.stdout and "by factor" in res.stdout
    assert "  seed: 0 50,000" in res.stdout and "  lam: 0 1 · 1e-05 1 · 2e-05 1" in res.stdout  # not 50,000 rows
    assert len(res.stdout.splitlines()) < 200 and seconds < 90  # was 150,000 rows drawn in 93 s
    assert not (tmp_path / "tiny").exists()


def test_the_progress_line_counts_a_retried_trial_once(tmp_path):
    from study.spec import parse_spec
    from study.planning.plan import plan
    from study.running.live import Live
    from study.progress import progress_bar

    p = plan(parse_spec(tiny_spec(tmp_path, factors={"lam": [0], "seed": [0, 1]}), check_paths=False))
    a, b = (t.run_key for t in p.trials)
    console = Console(file=io.StringIO(), width=200)
    with progress_bar(console) as prog:
        live = Live(p, [], None, prog, console)
        events = live.events()
        events.on_start(a)
        events.on_start(b)
        events.on_done(a, {"status": "failed", "error": "RayActorError: [worker] died"})
        events.on_start(a)  # the backend retries it
        events.on_done(b, {"status": "finished"})
        events.on_done(a, {"status": "finished"})
        task = prog.tasks[live.task]
        assert task.description == "trials: 2 done · 0 running · 0 failed" and task.completed == 2
    assert "[worker] died" in console.file.getvalue()  # error text is not console markup
