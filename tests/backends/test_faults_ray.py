"""Fault injection on the Ray backend (issue #21, items 2 and 1): a Ray worker killed with no retry left is a failed
trial whose reason lives in the results folder, the exit code says trials failed, and a rerun finishes it — its
MLflow run then ends FINISHED with its final metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from helpers import mlflow_runs, tiny_spec, write_spec

pytestmark = pytest.mark.slow


def test_a_lost_worker_with_no_retry_left_is_a_failed_trial_and_a_rerun_finishes_it(tmp_path, ray_cluster):
    raw = tiny_spec(tmp_path, name="lost", backend="ray", factors={"lam": [0], "seed": [0, 1]},
                    training={"epochs": 30, "steps_per_epoch": 3},
                    tracking={"enabled": True, "example_images": 0}, resources={"retries": 0})
    path = write_spec(tmp_path, raw)
    out = tmp_path / "lost"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}
    driver = subprocess.Popen([sys.executable, "-m", "study", "run", str(path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, victim = time.time() + 180, None
    while victim is None and time.time() < deadline:  # the first trial to checkpoint an epoch loses its worker
        for ckpt in (out / "trials").glob("*/checkpoint.pt"):
            info = json.loads((ckpt.parent / "running.json").read_text())
            os.kill(info["pid"], signal.SIGKILL)
            victim = ckpt.parent
            break
        time.sleep(0.05)
    assert victim is not None, "no trial started"
    log, _ = driver.communicate(timeout=300)
    assert driver.returncode == 1, log[-3000:]
    assert "1/2 trials finished, 1 failed" in log, log[-3000:]

    record = json.loads((victim / "result.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("Ray worker lost")
    details = victim / "worker_error.txt"
    assert details.is_file() and str(details) in record["error"] and details.read_text().strip()
    assert record["configuration"] and record["seed"] in (0, 1)
    events = [json.loads(ln)["event"] for ln in (victim / "events.log").read_text().splitlines()]
    assert events == ["start", "failed"]
    trials = pd.read_parquet(out / "trials.parquet").set_index("run_key")
    assert trials.loc[victim.name, "status"] == "failed"
    uri = f"sqlite:///{out / 'mlflow.db'}"
    runs = mlflow_runs(uri, "lost").set_index("tags.run_key", drop=False)
    assert runs.loc[victim.name, "status"] == "FAILED"

    # a rerun finishes it (from its checkpoint), and MLflow follows
    rerun = subprocess.run([sys.executable, "-m", "study", "run", str(path)], env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-2000:]
    assert json.loads((victim / "result.json").read_text())["status"] == "finished"
    runs = mlflow_runs(uri, "lost")
    kids = runs[runs["tags.run_key"].notna()].set_index("tags.run_key")
    assert len(kids) == 2 and set(kids["status"]) == {"FINISHED"}
    assert kids.loc[victim.name, "metrics.psnr"] > 0 and kids.loc[victim.name, "tags.status"] == "finished"
    assert "tags.error" not in kids or pd.isna(kids.loc[victim.name, "tags.error"])
