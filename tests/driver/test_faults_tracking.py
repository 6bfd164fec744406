"""Fault injection, MLflow side (issue #21, items 1, 4 and 5): a trial that failed and is then finished by a rerun
ends FINISHED in MLflow with its final metrics; one driver per results folder (a second exits naming the holder, or
waits with --wait) and no epoch point is logged twice even by two trackers racing; a moved results folder re-attaches
to its MLflow runs instead of duplicating them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from helpers import mlflow_runs, tiny_spec, write_spec
from study.cli import app

pytestmark = pytest.mark.slow
EPOCHS = 25


def _children(uri: str, name: str):
    runs = mlflow_runs(uri, name)
    return runs[runs["tags.run_key"].notna()].set_index("tags.run_key"), runs[runs["tags.study.role"] == "parent"]


def _steps(uri: str, run_id: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, "train_loss"))


def test_failed_then_finished_trial_two_drivers_and_a_moved_folder(tmp_path):
    from study.spec import load_spec
    from study.store.locks import is_locked
    from study.planning.plan import plan

    raw = tiny_spec(tmp_path, name="faults", factors={"lam": [0], "seed": [0, 1]},
                    training={"epochs": EPOCHS, "steps_per_epoch": 3},
                    tracking={"enabled": True, "example_images": 0}, resources={"retries": 0})
    path = write_spec(tmp_path, raw)
    out = tmp_path / "faults"
    broken, healthy = [t.run_key for t in plan(load_spec(path)).trials]
    blocker = out / "trials" / broken / "per_image.parquet"
    blocker.mkdir(parents=True)  # a disk fault: the trial's table cannot be written, so the trial fails

    # driver A runs; driver B, started meanwhile, exits naming A (and touches nothing)
    a = subprocess.Popen([sys.executable, "-m", "study", "run", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (is_locked(out / ".driver.lock") and (out / "mlflow.db").is_file()) and time.time() < deadline:
        time.sleep(0.05)
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 2 and f"pid {a.pid}" in res.output and "--wait" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    # B again with --wait: waits for A, then runs the failed trial again (it fails again: the fault is still there)
    res = CliRunner().invoke(app, ["run", str(path), "--wait"])
    log, _ = a.communicate(timeout=300)
    assert a.returncode == 1 and "1/2 trials finished, 1 failed" in log, log[-2000:]
    assert res.exit_code == 1 and "waiting for the driver" in res.output, res.output

    uri = f"sqlite:///{out / 'mlflow.db'}"
    kids, parents = _children(uri, "faults")
    assert len(parents) == 1 and len(kids) == 2
    assert kids.loc[broken, "status"] == "FAILED" and "IsADirectoryError" in kids.loc[broken, "tags.error"]
    assert "metrics.final_val_psnr" not in kids or kids["metrics.final_val_psnr"].isna()[broken]

    # the fault is repaired; a rerun finishes the trial and its MLflow run says so
    blocker.rmdir()
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 0, res.output
    kids, parents = _children(uri, "faults")
    assert len(parents) == 1 and set(parents["status"]) == {"FINISHED"}
    assert len(kids) == 2 and set(kids["status"]) == {"FINISHED"}
    assert kids.loc[broken, "tags.status"] == "finished"
    assert "tags.error" not in kids or kids["tags.error"].isna().all()
    assert kids.loc[broken, "metrics.psnr"] > 0 and kids.loc[broken, "metrics.final_val_psnr"] > 0
    for run_id in kids["run_id"]:  # three drivers, one point per epoch
        assert _steps(uri, run_id) == list(range(EPOCHS))

    # the folder moves (scratch → project storage): the moved copy re-attaches to its runs
    moved = tmp_path / "project" / "faults"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    res = CliRunner().invoke(app, ["run", str(path), "--output", str(moved), "--report-only"])
    assert res.exit_code == 0, res.output
    uri = f"sqlite:///{moved / 'mlflow.db'}"
    runs = mlflow_runs(uri, "faults")
    assert len(runs) == 3 and set(runs["status"]) == {"FINISHED"}
    parent = runs[runs["tags.study.role"] == "parent"].iloc[0]
    assert parent["tags.study.results_dir"] == str(moved)
    assert not out.exists()  # nothing written at the old place (artifacts go to the moved mlartifacts/)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    assert client.get_run(parent["run_id"]).info.artifact_uri.startswith(moved.as_uri())
    assert [f.path for f in client.list_artifacts(parent["run_id"], "report")]
    assert os.path.isdir(moved / "mlartifacts")


def test_two_trackers_racing_on_one_run_log_each_epoch_once(tmp_path):
    """Two drivers that both think they own a trial (each with its own memory of what it logged) still write each
    epoch once: the store is asked before a new epoch is written."""
    from study.store.results import ensure_study_id
    from study.tracking.conventions import default_uri
    from study.tracking.runs import Tracker

    ensure_study_id(tmp_path, "race")
    uri = default_uri(tmp_path)
    first = Tracker(uri, "race", "race", tmp_path, {})
    second = Tracker(uri, "race", "race", tmp_path, {})
    assert first.parent_id == second.parent_id
    for epoch in range(4):
        first.log_epoch("k", epoch, {"train_loss": 1.0 / (epoch + 1)})
        second.log_epoch("k", epoch, {"train_loss": 1.0 / (epoch + 1)})
    second.log_epoch("k", 4, {"train_loss": 0.1})
    first.log_epoch("k", 4, {"train_loss": 0.1})
    assert first.trial_run("k") == second.trial_run("k")
    assert _steps(uri, first.trial_run("k")) == [0, 1, 2, 3, 4]
