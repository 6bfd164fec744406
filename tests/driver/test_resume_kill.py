"""Fault tolerance: the driver is SIGKILLed at several points and `study run --resume` finishes every trial exactly
once — in the trial folders, in Ray Tune's results, in MLflow and in the results tables. Also: retries, the
trial lock, and a study run by drivers on the shared two-node Ray cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import mlflow_runs, tiny_spec, write_spec

pytestmark = pytest.mark.slow
EPOCHS = 3


def _driver(path: Path, ray_address: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    return subprocess.Popen([sys.executable, "-m", "study", "run", str(path), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(proc: subprocess.Popen, predicate, timeout: float = 180) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return time.time()
        if proc.poll() is not None:
            raise AssertionError(f"driver ended (rc {proc.returncode}) before the kill point:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError("kill point never reached")


def _finished(out: Path) -> int:
    return sum(json.loads(p.read_text())["status"] == "finished" for p in (out / "trials").glob("*/result.json"))


def test_sigkill_at_three_points_then_resume_runs_every_trial_exactly_once(tmp_path, ray_cluster):
    raw = tiny_spec(tmp_path, name="killme", backend="ray", factors={"lam": [0, 0.1], "seed": [0, 1, 2]},
                    training={"epochs": EPOCHS, "steps_per_epoch": 6}, tracking={"enabled": True, "example_images": 0})
    path = write_spec(tmp_path, raw)
    out = tmp_path / "killme"
    seen = []

    # 1. before the first trial finishes: a trial has checkpointed an epoch, none has a result
    proc = _driver(path, ray_cluster)
    _kill_when(proc, lambda: list((out / "trials").glob("*/checkpoint.pt")) and _finished(out) == 0)
    seen.append(("before the first trial finished", _finished(out)))
    # 2. mid-study
    proc = _driver(path, ray_cluster, "--resume")
    _kill_when(proc, lambda: 2 <= _finished(out) < 6)
    seen.append(("mid-study", _finished(out)))
    # 3. while the report is being written (its temporary folder exists)
    proc = _driver(path, ray_cluster, "--resume")
    last_kill = _kill_when(proc, lambda: list(out.glob(".report-*")))
    seen.append(("during report writing", _finished(out)))
    # resume to the end
    proc = _driver(path, ray_cluster, "--resume")
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log[-3000:]
    print("\nkill points (finished trials at the kill):", seen)
    assert seen[0][1] == 0 and 2 <= seen[1][1] < 6

    # trial folders: one finished result each, and exactly one "finished" event in each audit log
    keys = [p.name for p in (out / "trials").iterdir()]
    assert len(keys) == 6
    starts, finished_at = {}, {}
    for key in keys:
        lines = [json.loads(ln) for ln in (out / "trials" / key / "events.log").read_text().splitlines()]
        events = [e["event"] for e in lines]
        assert events.count("finished") == 1 and events[-1] == "finished", (key, events)
        starts[key], finished_at[key] = events.count("start"), lines[-1]["t"]
    print("starts per trial (a start after a kill resumes from the checkpoint):", sorted(starts.values()))

    # Ray Tune: across all the drivers' experiments no run key reported a final result twice; one that Tune never
    # logged finished under a driver that was then killed (Tune's own log died with it; the trial folder did not)
    finals = {}
    for result in (out / "ray").glob("run-*/*/result.json"):
        for line in result.read_text().splitlines():
            row = json.loads(line)
            if row.get("epoch") == -1 and row.get("trial_status_finished") == 1.0:
                key = row["config"]["run_key"]
                finals[key] = finals.get(key, 0) + 1
    assert set(finals.values()) == {1} and set(finals) <= set(keys)
    assert all(finished_at[k] < last_kill for k in set(keys) - set(finals))
    print("run keys with a final result in Ray Tune's logs:", len(finals), "of", len(keys))

    # results tables: no duplicate or lost rows
    trials = pd.read_parquet(out / "trials.parquet")
    per_image = pd.read_parquet(out / "per_image.parquet")
    assert sorted(trials["run_key"]) == sorted(keys) and set(trials["status"]) == {"finished"}
    assert len(per_image) == 6 * (4 + 2) and not per_image.duplicated(["run_key", "image_id"]).any()
    assert (out / "report" / "report.md").is_file() and not list(out.glob(".report-*"))

    # MLflow: one parent, one child per run key, nothing left RUNNING, one point per epoch
    uri = f"sqlite:///{out / 'mlflow.db'}"
    runs = mlflow_runs(uri, "killme")
    parents = runs[runs["tags.study.role"] == "parent"]
    children = runs[runs["tags.run_key"].notna()]
    assert len(parents) == 1 and len(children) == 6 and children["tags.run_key"].is_unique
    assert set(runs["status"]) == {"FINISHED"}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for run_id in children["run_id"]:
        assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == list(range(EPOCHS))


def test_failed_trials_are_retried_up_to_the_configured_count_but_divergence_is_not(tmp_path):
    from study.spec import load_spec
    from study.trial.execute import execute, read_events
    from study.planning.plan import plan, trial_spec
    from study.running.prepare import prepare

    from rich.console import Console

    spec = load_spec(write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0]}, resources={"retries": 2})))
    p = plan(spec)
    data, encoders = prepare(p, Console(quiet=True))
    ts = trial_spec(p, p.trials[0], data, encoders)
    broken = ts.__class__(**{**ts.__dict__, "data_path": str(tmp_path / "missing")})
    rec = execute(broken, retries=2)
    assert rec["status"] == "failed" and rec["attempts"] == 3
    assert [e["event"] for e in read_events(Path(ts.out_dir))] == ["start", "retry", "start", "retry", "start", "failed"]

    diverging = ts.__class__(**{**ts.__dict__, "training": ts.training.model_copy(update={"lr": 1e9}),
                                "out_dir": str(tmp_path / "div")})
    rec = execute(diverging, retries=2)
    assert rec["status"] == "failed" and "non-finite" in rec["error"] and rec["attempts"] == 1

    rec = execute(ts, retries=2)  # the same folder, now with good data: runs, and counts every start
    assert rec["status"] == "finished" and rec["attempts"] == 4


def test_a_second_process_given_a_running_trial_waits_and_does_not_train_it_again(tmp_path):
    from study.store.results import trial_state

    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0]},
                                          training={"epochs": 120, "steps_per_epoch": 8}))
    first = subprocess.Popen([sys.executable, "-m", "study", "run", str(path), "--backend", "local"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "tiny"
    deadline = time.time() + 120
    while not list((out / "trials").glob("*/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.05)
    folder = next((out / "trials").iterdir())
    assert trial_state(folder) == "running"
    second = subprocess.run([sys.executable, "-m", "study", "run-trial", str(path),
                             "--run-key", folder.name], capture_output=True, text=True, timeout=300)
    assert first.wait(timeout=300) == 0 and second.returncode == 0, second.stderr
    assert "already finished" not in second.stdout and "finished" in second.stdout  # it waited on the lock
    events = [json.loads(ln)["event"] for ln in (folder / "events.log").read_text().splitlines()]
    assert events == ["start", "finished"]
    # a killed trial is not "running" for ever: its lock died with it
    (folder / "running.json").write_text("{}")
    (folder / "result.json").unlink()
    assert trial_state(folder) == "pending"
