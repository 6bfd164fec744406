"""MLflow off the critical path (issue #18, item 2): the writer thread applies the driver's tracking calls in order,
one point per epoch; a study stopped by SIGTERM writes every queued epoch before it exits and marks its runs KILLED;
a rerun finishes them."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch
from typer.testing import CliRunner

from helpers import mlflow_runs, tiny_spec, write_spec
from study.cli import app
from study.tracking.conventions import default_uri
from study.tracking.runs import Tracker
from study.tracking.writer import TrackingWriter
from study.store.results import ensure_study_id

pytestmark = pytest.mark.slow


def _steps(uri: str, run_id: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, "train_loss"))


def test_the_writer_applies_calls_in_order_one_point_per_epoch_and_survives_a_failed_write(tmp_path):
    ensure_study_id(tmp_path, "w")
    uri = default_uri(tmp_path)
    warnings = []
    writer = TrackingWriter(Tracker(uri, "w", "w", tmp_path, {}), warn=warnings.append)
    for key in ("a", "b", "c"):
        writer.trial_run(key, key, {"lr": 1e-3}, start=True)
    for epoch in range(40):
        for key in ("a", "b", "c"):
            writer.log_epoch(key, epoch, {"train_loss": 1.0 / (epoch + 1), "epoch": epoch})
    writer.log_epoch("a", 5, {"train_loss": 9.0})  # a repeated epoch (a resumed trial) is not logged again
    writer.finish("b", {"status": "finished", "psnr": 30.0, "finished_at": 1.0}, tmp_path / "no-such-folder")
    writer.finish("d", {"finished_at": 2.0}, tmp_path)  # a failing write (no status) is reported; the thread goes on
    writer.log_epoch("c", 40, {"train_loss": 0.01})
    writer.close()
    assert writer.pending() == 0 and writer.failed == 1 and len(warnings) == 1 and "KeyError" in warnings[0]
    runs = mlflow_runs(uri, "w").set_index("tags.run_key")
    for key, last in (("a", 39), ("b", 39), ("c", 40)):
        assert _steps(uri, runs.loc[key, "run_id"]) == list(range(last + 1))
    assert runs.loc["a", "metrics.train_loss"] == pytest.approx(1 / 40)
    assert runs.loc["b", "status"] == "FINISHED" and runs.loc["b", "metrics.psnr"] == 30.0
    assert runs.loc["a", "status"] == "RUNNING" and runs.loc["a", "params.lr"] == "0.001"


def _history_len(out) -> int:
    ck = next((out / "trials").glob("*/checkpoint.pt"), None)
    try:
        return len(torch.load(ck, weights_only=True)["history"]) if ck else 0
    except Exception:  # noqa: BLE001 - being written
        return 0


def test_sigterm_mid_run_loses_no_mlflow_epoch(tmp_path, monkeypatch):
    slow = Tracker.log_epochs

    def slow_store(self, run_key, points):  # a store that answers in 0.2 s (a busy server): writes queue up
        time.sleep(0.2)
        slow(self, run_key, points)

    monkeypatch.setattr(Tracker, "log_epochs", slow_store)
    raw = tiny_spec(tmp_path, name="term", factors={"lam": [0]}, training={"epochs": 200, "steps_per_epoch": 2},
                    tracking={"enabled": True, "example_images": 0})
    path, out = write_spec(tmp_path, raw), tmp_path / "term"

    def kill_when_running():
        deadline = time.time() + 120
        while _history_len(out) < 12 and time.time() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=kill_when_running, daemon=True).start()
    before = signal.getsignal(signal.SIGTERM)
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 143, res.output
    queued = [ln for ln in res.output.splitlines() if ln.startswith("MLflow: writing")]
    assert queued and int(queued[0].split()[2]) >= 1, res.output  # epochs were still queued when SIGTERM came
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back

    uri = default_uri(out)
    runs = mlflow_runs(uri, "term")
    child, parent = runs[runs["tags.run_key"].notna()].iloc[0], runs[runs["tags.study.role"] == "parent"].iloc[0]
    reached = _history_len(out)  # epochs checkpointed; the driver got all of them, or all but the last
    steps = _steps(uri, child["run_id"])
    assert steps == list(range(len(steps))) and len(steps) >= reached - 1 >= 11, (steps, reached)
    assert child["status"] == "KILLED" and parent["status"] == "KILLED"

    monkeypatch.setattr(Tracker, "log_epochs", slow)
    res = CliRunner().invoke(app, ["run", str(path)])  # resumes the trial, brings MLflow up to date
    assert res.exit_code == 0, res.output
    runs = mlflow_runs(uri, "term")
    child = runs[runs["tags.run_key"].notna()].iloc[0]
    assert child["status"] == "FINISHED" and _steps(uri, child["run_id"]) == list(range(200))


def test_the_sigterm_handler_is_reclaimed_after_a_library_replaces_it():
    from study import interrupt

    before = signal.getsignal(signal.SIGTERM)
    with interrupt.sigterm_exits():
        signal.signal(signal.SIGTERM, lambda signum, frame: None)  # what ray.init does (sys.exit(15))
        interrupt.reclaim_sigterm()
        assert signal.getsignal(signal.SIGTERM) is interrupt._exit
    assert signal.getsignal(signal.SIGTERM) is before
    interrupt.reclaim_sigterm()  # outside the block: nothing changes
    assert signal.getsignal(signal.SIGTERM) is before
