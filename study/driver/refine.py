"""Optuna refinement after the grid (Ray Tune + OptunaSearch), one Optuna study per (feature level, pretraining).

The sampled value (a Ψ target or λ) becomes an ordinary trial with its own run key and folder, so a value tried
before is never trained twice; the Optuna storage (`RESULTS_DIR/search.db`) remembers what was tried, and a rerun
only spends what is left of the budget. Results: `RESULTS_DIR/search.parquet`.
"""

from __future__ import annotations

import time
import pandas as pd

from study.driver.grid import Trial, short_hash, trial_config
from study.store.results import read_record, trial_dir, write_parquet


def _trainable(config, make):
    from ray import tune

    from study.trial.execute import execute

    spec = make(config)
    record = execute(spec)
    tune.report({"val_psnr": float(record.get("val_psnr") or float("-inf")), "run_key": spec.run_key})


def refine(p, data, encoders) -> pd.DataFrame:
    """Run what is left of each (feature level, pretraining) budget; return the table of all refinement trials."""
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from study.backends.ray import ensure_ray
    from study.driver.plan import trial_spec

    s, out = p.spec.search, p.out
    storage_url = f"sqlite:///{(out / 'search.db').resolve()}"
    seed = p.spec.factors.seed[0]
    started = ensure_ray()
    rows = []
    try:
        for level in p.spec.factors.feature_level:
            for pre in p.spec.factors.pretraining:
                name = f"{p.spec.name}:{level}:{pre}:{s.over}"
                storage = optuna.storages.RDBStorage(storage_url)
                try:
                    done = [t for t in optuna.load_study(study_name=name, storage=storage).trials
                            if t.state == optuna.trial.TrialState.COMPLETE]
                except KeyError:
                    done = []
                left = s.budget - len(done)

                def make(config, level=level, pre=pre):
                    lam, psi = (None, float(config["psi_target"])) if s.over == "psi_target" else (float(10 ** config["log_lam"]), None)
                    t = Trial(level, pre, lam, seed, psi)
                    cfg = trial_config(p.spec, t, p.data_id, p.encoder_keys)
                    return trial_spec(p, Trial(level, pre, lam, seed, psi, run_key=short_hash(cfg), config=cfg), data, encoders)

                if left > 0:
                    import math

                    space = ({"psi_target": optuna.distributions.FloatDistribution(s.low, s.high)} if s.over == "psi_target"
                             else {"log_lam": optuna.distributions.FloatDistribution(math.log10(s.low), math.log10(s.high))})
                    searcher = OptunaSearch(space, metric=s.metric, mode="max", study_name=name, storage=storage,
                                            seed=s.seed + len(done))
                    tuner = tune.Tuner(
                        tune.with_resources(tune.with_parameters(_trainable, make=make),
                                            {"cpu": p.spec.resources.cpu, "gpu": p.spec.resources.gpu}),
                        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=left,
                                                    max_concurrent_trials=p.spec.max_concurrent),
                        run_config=tune.RunConfig(name=f"search-{time.strftime('%Y%m%d-%H%M%S')}",
                                                  storage_path=str((out / "ray").resolve()), verbose=0))
                    tuner.fit()
                study = optuna.load_study(study_name=name, storage=storage)
                for t in study.trials:
                    if t.state != optuna.trial.TrialState.COMPLETE:
                        continue
                    spec = make(t.params)
                    rec = read_record(trial_dir(out, spec.run_key)) or {}
                    rows.append({"feature_level": level, "pretraining": pre, "run_key": spec.run_key,
                                 s.over: t.params[s.over], "lam": spec.lam, "psi_target": spec.psi_target,
                                 "val_psnr": t.value, "psnr": rec.get("psnr"), "ssim": rec.get("ssim"),
                                 "psi": rec.get("psi"), "lam_calibrated": rec.get("lam_calibrated")})
    finally:
        if started:
            import ray

            ray.shutdown()
    table = pd.DataFrame(rows)
    write_parquet(table, out / "search.parquet")
    return table
