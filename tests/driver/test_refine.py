"""The Optuna refinement runs its trials like the grid's: run keys, MLflow child runs, a results table."""

from __future__ import annotations

import pandas as pd
import pytest

from study.running.run import run_study
from study.spec import load_spec
from study.store.events import read_events

from helpers import mlflow_runs, tiny_spec, write_spec


def test_a_refinement_point_that_is_a_grid_point_is_the_grid_trial(tmp_path):
    from study.planning.grid import refinement_trial
    from study.planning.plan import plan

    p = plan(load_spec(write_spec(tmp_path, tiny_spec(tmp_path, factors={"lam": [0, 0.1], "psi_target": [0.6]}))))
    by_point = {(t.lam, t.psi_target): t for t in p.trials}
    args = (p.spec, "block1_conv2", "random", 0, p.data_id, p.encoder_keys)
    for point, kw in (((None, 0.6), {"psi_target": 0.6}), ((0.1, None), {"lam": 0.1})):
        t = refinement_trial(*args, **kw)
        assert t == by_point[point] and t.run_key == by_point[point].run_key and t.config == by_point[point].config
    assert refinement_trial(*args, psi_target=0.61).run_key not in {t.run_key for t in p.trials}
    with pytest.raises(ValueError):
        refinement_trial(*args, lam=0.1, psi_target=0.6)


@pytest.mark.slow
def test_refinement_trials_are_tracked_like_grid_trials(tmp_path, ray_session):
    import optuna
    from mlflow.tracking import MlflowClient

    raw = tiny_spec(tmp_path, name="refine-tracked", backend="ray", tracking={"enabled": True},
                    factors={"feature_level": ["block1_conv2"], "lam": [0], "psi_target": [0.77], "seed": [0]},
                    search={"over": "psi_target", "low": 0.3, "high": 0.9, "budget": 2})
    out = tmp_path / "refine-tracked"
    out.mkdir()
    # a driver killed mid-refinement left an Optuna trial RUNNING at Ψ = 0.77, which is also a grid point
    name = "refine-tracked:block1_conv2:random:psi_target"
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{out / 'search.db'}", direction="maximize")
    study.enqueue_trial({"psi_target": 0.77})
    study.ask().suggest_float("psi_target", 0.3, 0.9)
    run_study(load_spec(write_spec(tmp_path, raw)), write_report=False)

    trials, search = pd.read_parquet(out / "trials.parquet"), pd.read_parquet(out / "search.parquet")
    assert len(search) == 2 and (search["status"] == "finished").all() and search["val_psnr"].notna().all()
    assert set(trials.columns) <= set(search.columns) and {"lam_calibrated", "optuna_trial"} <= set(search.columns)
    # the stale point was trained again first; being a grid point, it is the grid's trial (not trained twice)
    grid_key = trials.loc[trials["psi_target"] == 0.77, "run_key"].item()
    assert grid_key in set(search["run_key"])
    assert [e["event"] for e in read_events(out / "trials" / grid_key)].count("start") == 1
    states = [t.state for t in optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'search.db'}").trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2

    uri = f"sqlite:///{out / 'mlflow.db'}"
    runs = mlflow_runs(uri, "refine-tracked")
    parent = runs.loc[runs["tags.study.role"] == "parent", "run_id"].item()
    client = MlflowClient(tracking_uri=uri)
    for _, row in search.iterrows():
        run = runs[runs["tags.run_key"] == row["run_key"]]
        assert len(run) == 1 and run["status"].item() == "FINISHED"
        assert run["tags.mlflow.parentRunId"].item() == parent
        phase = run["tags.study.phase"].item()  # the grid point's run is the grid's
        assert phase == "refine" if row["run_key"] != grid_key else pd.isna(phase)
        steps = [m.step for m in client.get_metric_history(run["run_id"].item(), "train_loss")]
        assert sorted(steps) == [0, 1]  # one point per epoch
        assert run["metrics.psnr"].item() == pytest.approx(row["psnr"])
