"""A real adaptive study (issue #29): stage 2 adds trials exactly where its recorded decision asked, on the local
backend and on Ray; a rerun runs nothing; a driver SIGKILLed in stage 2 and rerun leaves no trial and no MLflow run
twice. Stage 1 is a finished fixed study of the same seeds (same run keys), whose measured between-network variance
sets the smallest effect so that stage 2 has work to do (5 seeds per configuration)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import delta_asking, mlflow_runs, tiny_spec, write_spec

pytestmark = pytest.mark.slow
FACTORS = {"lam": [0, 0.1, 100]}
TRAINING = {"epochs": 3, "steps_per_epoch": 8, "lr": 5e-3}


@pytest.fixture(scope="module")
def stage_one(tmp_path_factory):
    """(a finished 3-configuration × 3-seed fixed study, the smallest effect at which stage 2 asks 5 seeds)."""
    from analysis.adaptive import VARIANCE_CONFIDENCE, seeds_for, variance_bound
    from analysis.claims import MetricClaims, Settings
    from analysis.compute import read_study

    root = tmp_path_factory.mktemp("stage1")
    raw = tiny_spec(root, name="ad", factors={**FACTORS, "seed": [0, 1, 2]}, training=TRAINING, metrics=["psnr"])
    path = write_spec(root, raw)
    proc = subprocess.run([sys.executable, "-m", "study", "run", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    st = read_study(root / "ad")
    v = MetricClaims(st.per_image, st.trials, "psnr", Settings()).nets.variance
    planned = variance_bound(v.ms_within, 3 * 2, VARIANCE_CONFIDENCE)  # what stage_two plans with
    delta = delta_asking(5, 3, planned, v.test_term)
    assert seeds_for(3, planned, v.test_term, delta, 0.04, 0.8, 3, 6)[0] == 5
    return root / "ad", delta


def _adaptive(tmp: Path, stage_one, backend: str) -> tuple[Path, Path]:
    folder, delta = stage_one
    out = tmp / "ad"
    shutil.copytree(folder, out)
    raw = tiny_spec(tmp, name="ad", backend=backend, factors={**FACTORS, "seed": [0]}, training=TRAINING,
                    metrics=["psnr"], tracking={"enabled": True, "example_images": 0},
                    adaptive={"min_seeds": 3, "max_seeds": 6, "power": 0.8},
                    analysis={"min_effect": {"psnr": delta}})
    return write_spec(tmp, raw, "adaptive.yaml"), out


def _run(path: Path, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study", "run", str(path)], capture_output=True, text=True,
                          env=env, **kw)


def _check_exactly_the_record(out: Path) -> dict:
    """Trials per configuration and stage are what stages.json says; each trial finished once; one MLflow run per
    trial, tagged with its stage."""
    rec = json.loads((out / "stages.json").read_text())
    added = rec["stages"][1]["added"]
    trials = pd.read_parquet(out / "trials.parquet")
    assert set(trials["status"]) == {"finished"} and trials["run_key"].is_unique
    for c, g in trials.groupby("configuration"):
        assert sorted(g.loc[g["stage"] == 1, "seed"]) == [0, 1, 2], c
        assert sorted(g.loc[g["stage"] == 2, "seed"]) == added.get(c, []), c
    assert rec["stages"][1]["trials"] == int((trials["stage"] == 2).sum()) > 0
    for folder in (out / "trials").iterdir():
        events = [json.loads(ln)["event"] for ln in (folder / "events.log").read_text().splitlines()]
        assert events.count("finished") == 1, (folder.name, events)
    assert len(list((out / "trials").iterdir())) == len(trials)
    runs = mlflow_runs(f"sqlite:///{out / 'mlflow.db'}", "ad")
    children = runs[runs["tags.run_key"].notna()]
    assert sorted(children["tags.run_key"]) == sorted(trials["run_key"]) and children["tags.run_key"].is_unique
    stages = dict(zip(trials["run_key"], trials["stage"].astype(str)))
    assert all(stages[k] == s for k, s in zip(children["tags.run_key"], children["tags.stage"]))
    assert set(runs["status"]) == {"FINISHED"}
    report = (out / "report" / "report.md").read_text()
    assert "## Stages (adaptive seeds)" in report and "α₂ = 0.04" in report
    return rec


def test_a_local_adaptive_study_runs_stage_two_where_its_record_asked_and_a_rerun_runs_nothing(tmp_path, stage_one):
    path, out = _adaptive(tmp_path, stage_one, "local")
    proc = _run(path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "adaptive: stage 2 adds" in proc.stdout
    rec = _check_exactly_the_record(out)
    assert rec["stages"][1]["decision"]["seeds_needed"] == 5
    before = {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/result.json")}
    again = _run(path)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stdout[-2000:]
    assert {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/result.json")} == before
    assert json.loads((out / "stages.json").read_text()) == rec  # decided once


def test_a_ray_adaptive_study_killed_in_stage_two_resumes_it_with_no_trial_or_run_twice(tmp_path, stage_one,
                                                                                         ray_cluster):
    path, out = _adaptive(tmp_path, stage_one, "ray")
    env = {**os.environ, "RAY_ADDRESS": ray_cluster}
    proc = subprocess.Popen([sys.executable, "-m", "study", "run", str(path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline:  # a stage-2 trial has started (a tenth trial folder with its audit log)
        if (out / "stages.json").is_file() and len(list((out / "trials").glob("*/events.log"))) > 9:
            break
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(list((out / "trials").glob("*/result.json")))
    rerun = _run(path, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    rec = _check_exactly_the_record(out)
    assert 9 <= killed_at < 9 + rec["stages"][1]["trials"]  # killed while stage 2 was running
    assert "nothing to run" in _run(path, env=env, timeout=300).stdout
