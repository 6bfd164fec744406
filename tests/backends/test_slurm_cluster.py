"""`study submit` through a real single-node SLURM (slurmctld + slurmd + munged started here, as root).

Skipped, with the reason, only where SLURM cannot run (no slurm-wlm/munge installed, not root); `.ci/run` installs
the packages, so CI runs these.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import delta_asking, mlflow_runs, tiny_spec, write_spec
from helpers.slurm_cluster import Slurm, available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"no SLURM here: {available()}")]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = Slurm(tmp_path_factory.mktemp("slurm")).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster
    cluster.stop()


def _submit(path: Path, *args: str) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "study", "submit", str(path), *args], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    words = proc.stdout.replace(",", " ").split()
    return {name: words[words.index(name) + 1] for name in ("ray", "array", "finalize") if name in words}


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


def test_array_mode_runs_every_trial_once_and_a_requeued_task_resumes(slurm, tmp_path):
    raw = tiny_spec(tmp_path, name="arr", tracking={"enabled": True, "example_images": 0},
                    training={"epochs": 40, "steps_per_epoch": 8}, slurm={"mode": "array", "time": "10:00"})
    path = write_spec(tmp_path, raw)
    jobs = _submit(path)
    out = tmp_path / "arr"
    keys = next((out / "slurm").glob("*-keys.txt")).read_text().split()
    assert len(keys) == 2
    first = out / "trials" / keys[0]
    # preemption / time limit: once task 0 has checkpointed an epoch, send what SLURM sends before the time limit
    _wait_for(lambda: (first / "checkpoint.pt").is_file(), 120, "task 0 never checkpointed")
    subprocess.run(["scancel", "--batch", "--signal=USR1", f"{jobs['array']}_0"], check=True, env=slurm.env)
    array_states = slurm.wait(jobs["array"], timeout=240)
    final_states = slurm.wait(jobs["finalize"], timeout=120)
    print(f"\nSLURM array job {jobs['array']}: {array_states}; report job {jobs['finalize']}: {final_states}")
    assert array_states == ["COMPLETED", "COMPLETED"] and final_states == ["COMPLETED"]

    log = (out / "slurm" / f"array-{jobs['array']}_0.out").read_text()
    assert "requeueing" in log and "restart 1" in log
    rec = json.loads((first / "result.json").read_text())
    events = [json.loads(ln)["event"] for ln in (first / "events.log").read_text().splitlines()]
    print(f"requeued trial {keys[0]}: resumed from epoch {rec['resumed_from']}, events {events}")
    assert rec["status"] == "finished" and 1 <= rec["resumed_from"] < 40
    assert events.count("start") == 2 and events.count("finished") == 1

    trials = pd.read_parquet(out / "trials.parquet")
    assert sorted(trials["run_key"]) == sorted(keys) and set(trials["status"]) == {"finished"}
    assert (out / "report" / "report.md").is_file()
    runs = mlflow_runs(f"sqlite:///{out / 'mlflow.db'}", "arr")
    children = runs[runs["tags.run_key"].notna()]
    assert sorted(children["tags.run_key"]) == sorted(keys) and set(children["status"]) == {"FINISHED"}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    for run_id in children["run_id"]:  # tasks do not log; the report job fills in each epoch once
        assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == list(range(40))

    res = subprocess.run([sys.executable, "-m", "study", "submit", str(path)], capture_output=True, text=True)
    assert res.returncode == 2 and "nothing to submit" in res.stderr  # resubmitted: all done


def test_ray_mode_runs_the_study_on_a_ray_cluster_inside_the_allocation(slurm, tmp_path):
    from study.spec import load_spec
    from study.running.run import run_study

    base = tiny_spec(tmp_path, name="rmode", factors={"lam": [0]})
    run_study(load_spec(write_spec(tmp_path, base, "first.yaml")))  # part of the study ran before (locally)
    out = tmp_path / "rmode"
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*/result.json")}
    assert len(done_before) == 1

    raw = tiny_spec(tmp_path, name="rmode", backend="ray", tracking={"enabled": True, "example_images": 0},
                    slurm={"mode": "ray", "time": "10:00", "cpus_per_node": 2})
    jobs = _submit(write_spec(tmp_path, raw))
    states = slurm.wait(jobs["ray"], timeout=300)
    log = (out / "slurm" / f"ray-{jobs['ray']}.out").read_text()
    print(f"\nSLURM ray-mode job {jobs['ray']}: {states}")
    assert states == ["COMPLETED"], log[-3000:]
    assert "Ray runtime started" in log and "2/2 trials finished" in log
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 2 and set(trials["status"]) == {"finished"}
    after = {p.parent.name: p.stat().st_mtime_ns for p in (out / "trials").glob("*/result.json")}
    assert {k: after[k] for k in done_before} == done_before  # continued where it stopped
    ray_dirs = list((out / "ray").glob("run-*"))
    assert ray_dirs, "the driver ran its trials through Ray Tune"
    assert (out / "report" / "report.md").is_file()


def test_an_adaptive_study_runs_its_stages_on_slurm_the_collect_job_submitting_stage_two(slurm, tmp_path):
    """Stage 1 (3 seeds × 2 configurations) as an array; its collect job is held until stage 1 is over so that the
    smallest effect can be set from stage 1's measured variance where stage 2 has work (max_seeds 4); released,
    it decides stage 2 and submits it (a second array and collect job), which runs just the added trials."""
    import yaml

    from analysis.adaptive import VARIANCE_CONFIDENCE, seeds_for, variance_bound
    from analysis.claims import MetricClaims, Settings
    from analysis.compute import read_study
    from study.store.results import refresh_tables

    raw = tiny_spec(tmp_path, name="adp", factors={"lam": [0, 0.001], "seed": [0]}, metrics=["psnr"],
                    training={"epochs": 2, "steps_per_epoch": 4, "lr": 5e-3},
                    tracking={"enabled": True, "example_images": 0},
                    adaptive={"min_seeds": 3, "max_seeds": 4, "power": 0.8},
                    slurm={"mode": "array", "time": "10:00"})
    path = write_spec(tmp_path, raw)
    jobs = _submit(path)
    subprocess.run(["scontrol", "hold", jobs["finalize"]], check=True, env=slurm.env)
    assert slurm.wait(jobs["array"], timeout=300) == ["COMPLETED"] * 6
    out = tmp_path / "adp"
    refresh_tables(out)
    st = read_study(out)
    v = MetricClaims(st.per_image, st.trials, "psnr", Settings()).nets.variance
    planned = variance_bound(v.ms_within, 2 * 2, VARIANCE_CONFIDENCE)
    delta = delta_asking(4, 2, planned, v.test_term)
    assert seeds_for(2, planned, v.test_term, delta, 0.04, 0.8, 3, 4)[0] == 4
    frozen = next((out / "slurm").glob("*-study.yaml"))
    spec = yaml.safe_load(frozen.read_text())
    spec["analysis"]["min_effect"] = {"psnr": float(delta)}
    frozen.write_text(yaml.safe_dump(spec, sort_keys=False))
    subprocess.run(["scontrol", "release", jobs["finalize"]], check=True, env=slurm.env)
    assert slurm.wait(jobs["finalize"], timeout=180) == ["COMPLETED"]
    log = (out / "slurm" / f"report-{jobs['finalize']}.out").read_text()
    words = log[log.index("stage 2 submitted:"):].replace(",", " ").split()
    second = {name: words[words.index(name) + 1] for name in ("array", "finalize")}
    rec = json.loads((out / "stages.json").read_text())
    added = rec["stages"][1]["added"]
    assert rec["stages"][1]["trials"] == sum(map(len, added.values())) > 0
    assert set(slurm.wait(second["array"], timeout=300)) == {"COMPLETED"}
    assert slurm.wait(second["finalize"], timeout=180) == ["COMPLETED"]
    print(f"\nadaptive on SLURM: stage 1 array {jobs['array']}, collect {jobs['finalize']} → stage 2 {second}: {added}")
    assert "stage 2 submitted" not in (out / "slurm" / f"report-{second['finalize']}.out").read_text()

    trials = pd.read_parquet(out / "trials.parquet")
    assert set(trials["status"]) == {"finished"} and trials["run_key"].is_unique
    for c, g in trials.groupby("configuration"):
        assert sorted(g.loc[g["stage"] == 1, "seed"]) == [0, 1, 2] and sorted(g.loc[g["stage"] == 2, "seed"]) == \
            added.get(c, []), c
    runs = mlflow_runs(f"sqlite:///{out / 'mlflow.db'}", "adp")
    children = runs[runs["tags.run_key"].notna()]
    assert sorted(children["tags.run_key"]) == sorted(trials["run_key"])
    assert sorted(children["tags.stage"]) == sorted(trials["stage"].astype(str))
    assert "## Stages (adaptive seeds)" in (out / "report" / "report.md").read_text()
    res = subprocess.run([sys.executable, "-m", "study", "submit", str(path)], capture_output=True, text=True)
    assert res.returncode == 2 and "nothing to submit" in res.stderr
