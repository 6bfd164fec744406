"""`study status`: counts by state, failed trials with their errors, trial-hours and an ETA, from the folder alone."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner

from study.cli import app
from study.store.locks import file_lock
from study.store.results import write_json
from study.running.status import summarize


def _folder(tmp_path):
    out = tmp_path / "res"
    keys = [f"k{i}" for i in range(6)]
    write_json(out / "grid.json", [{"run_key": k, "configuration": f"c{i % 2}", "seed": i} for i, k in enumerate(keys)])
    t0 = 1_000_000.0
    # k0..k2 finished at t0+100, +200, +300 (100 s each, one after the other), k3 failed, k4 running, k5 pending
    for i in range(3):
        write_json(out / "trials" / keys[i] / "result.json",
                   {"run_key": keys[i], "status": "finished", "wall_s": 100.0, "finished_at": t0 + 100 * (i + 1)})
    write_json(out / "trials" / "k3" / "result.json",
               {"run_key": "k3", "status": "failed", "wall_s": 50.0, "finished_at": t0 + 350, "attempts": 2,
                "error": "Diverged: non-finite loss at epoch 3"})
    write_json(out / "trials" / "k4" / "running.json", {"host": "gpu07", "pid": os.getpid(), "started": t0 + 340})
    return out, t0


def test_summary_counts_hours_and_eta(tmp_path):
    out, t0 = _folder(tmp_path)
    with file_lock(out / "trials" / "k4" / ".lock"):  # k4's process is alive
        info = summarize(out, now=t0 + 400)
    assert info["counts"] == {"finished": 3, "running": 1, "failed": 1, "pending": 1}
    assert abs(info["trial_hours"] - (350 + 60) / 3600) < 1e-9
    # 3 trials finished within t0..t0+300 → 3/300 per second (the failed one does not count); 2 left → 200 s
    assert abs(info["eta_s"] - 200.0) < 1e-6
    running = next(r for r in info["trials"] if r["run_key"] == "k4")
    assert running["host"] == "gpu07" and running["running_s"] == 60
    # without the lock (its process was killed) the trial is pending again
    assert summarize(out, now=t0 + 400)["counts"]["pending"] == 2


def test_status_cli_lists_failures_and_eta(tmp_path):
    out, _ = _folder(tmp_path)
    res = CliRunner().invoke(app, ["status", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps at the console's width, fixed when the console was first made
    assert "failed k3" in text and "non-finite loss at epoch 3" in text
    assert "5.8 trial-minutes used" in text and "ETA 0 h 03 min" in text
    res = CliRunner().invoke(app, ["status", str(out), "--json"])
    assert json.loads(res.output)["counts"]["failed"] == 1
    res = CliRunner().invoke(app, ["status", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "grid.json" in res.output


def test_eta_of_a_tiny_study_with_trials_pending_is_not_zero(tmp_path):
    """Fault found by injection: two trials of a few seconds, five pending → "0.00 trial-hours, ETA 0 h 00 min"."""
    from study.running.status import eta_text, used_text

    out = tmp_path / "res"
    keys = [f"k{i}" for i in range(7)]
    write_json(out / "grid.json", [{"run_key": k, "configuration": "c", "seed": i} for i, k in enumerate(keys)])
    for i in range(2):
        write_json(out / "trials" / keys[i] / "result.json",
                   {"run_key": keys[i], "status": "finished", "wall_s": 2.0, "finished_at": 100.0 + 2 * (i + 1)})
    info = summarize(out, now=110.0)
    assert info["counts"]["pending"] == 5 and 0 < info["eta_s"] < 60
    assert eta_text(info["eta_s"]) == "ETA < 1 min at the rate so far" and used_text(info["trial_hours"]) == "4 trial-seconds used"
    # failed trials (which end in seconds) give no rate
    write_json(out / "trials" / "k1" / "result.json", {"run_key": "k1", "status": "failed", "wall_s": 0.1,
                                                       "finished_at": 102.1, "error": "x"})
    assert summarize(out, now=110.0)["eta_s"] is None
