"""Optuna refinement after the grid (Ray Tune + OptunaSearch), one Optuna study per (feature level, pretraining).

Each sampled value (a Ψ target or log λ) is a trial like the grid's: its run key comes from `study.planning.grid`
(`refinement_trial`: a point that is also a grid point is the grid's trial, never trained twice), its spec from
`study.planning.plan.trial_spec`, it runs through `study.trial.execute.execute` with `resources.retries`, and it
reports through the driver's `Events`, so it is an MLflow child run of the study (tagged `study.phase=refine`).

The Optuna storage (`RESULTS_DIR/search.db`) remembers what was tried: a rerun only spends what is left of the budget,
and a point a killed driver left running is trained again first (from its checkpoint) rather than replaced.
Results: `RESULTS_DIR/search.parquet`, one row per completed Optuna trial: the columns of `trials.parquet` (via
`study.store.results.collect`) and the Optuna ones (`val_psnr` as Optuna was told it, `optuna_study`, `optuna_trial`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from study.backends import Events
from study.planning.grid import Trial, refinement_trial
from study.planning.plan import Plan, trial_spec
from study.errors import StudyError
from study.store.results import collect, read_record, trial_dir, write_parquet

PHASE = ("study.phase", "refine")  # the MLflow tag of a refinement trial's child run


@dataclass
class _Points:
    """Sampled values → trials and trial specs, for one (feature level, pretraining). Pickled to Ray workers."""

    p: Plan
    data: Any
    encoders: dict
    level: str
    pre: str

    @property
    def over(self) -> str:
        return self.p.spec.search.over

    def trial(self, value: float) -> Trial:
        point = {"psi_target": float(value)} if self.over == "psi_target" else {"lam": float(10 ** value)}
        return refinement_trial(self.p.spec, self.level, self.pre, int(self.p.spec.factors.seed[0]), self.p.data_id,
                                self.p.encoder_keys, **point)

    def __call__(self, config: dict):
        return trial_spec(self.p, self.trial(config[self.over]), self.data, self.encoders)


def _trainable(config, points: _Points, metric: str, retries: int = 0):
    """One refinement trial on a Ray worker: every epoch reported (each carries `metric`, which OptunaSearch reads
    from every result), then the trial's selected value, the one Optuna is told (-inf for a failed trial)."""
    from ray import tune

    from study.backends.ray import mark_node
    from study.trial.execute import execute

    mark_node()
    record = execute(points(config), on_epoch=lambda epoch, m: tune.report({**m, "epoch": epoch}), retries=retries)
    value = record.get(metric) if record["status"] == "finished" else None
    tune.report({"epoch": -1, metric: float("-inf") if value is None else float(value),
                 "trial_status_finished": float(record["status"] == "finished")})


class _Phase:
    """The refinement's side of the driver's events: sampled trials are announced to the driver (`live.add`: its
    MLflow params and name) and their child runs tagged `study.phase=refine`. A sampled point whose trial had
    finished already (a grid point) is reported by nobody: its run is the grid's and stays as it is."""

    def __init__(self, p: Plan, live):
        self.p, self.live, self.tracker = p, live, getattr(live, "tracker", None)
        self.events = live.events() if live is not None else Events()
        self.grid = {t.run_key for t in p.trials}
        self.specs, self.settled = {}, set()

    def add(self, spec, name: str) -> None:
        self.specs[spec.run_key] = spec
        rec = read_record(trial_dir(self.p.out, spec.run_key))
        if rec is not None and rec["status"] == "finished":
            self.settled.add(spec.run_key)
        elif self.live is not None:
            self.live.add(spec, name)

    def tag(self, key: str) -> None:
        if self.tracker and key not in self.grid:
            self.tracker.tag_run(key, *PHASE)

    def on_start(self, key: str) -> None:
        if key not in self.settled:
            self.events.on_start(key)
            self.tag(key)

    def on_epoch(self, key: str, epoch: int, metrics: dict) -> None:
        if key not in self.settled:
            self.events.on_epoch(key, epoch, metrics)

    def on_done(self, key: str, record: dict) -> None:
        if key not in self.settled:
            self.events.on_done(key, record)

    def forward(self):
        from ray import tune

        from study.backends.ray import make_forward

        return make_forward(tune.Callback)(Events(self.on_start, self.on_epoch, self.on_done), self.specs)

    def settle(self, rows: list[dict]) -> None:
        """Child runs a killed driver left open (or never opened): brought up to date from the trial records."""
        if not self.tracker:
            return
        for row in rows:
            rec = read_record(trial_dir(self.p.out, row["run_key"]))
            if rec is not None and row["run_key"] not in self.grid:
                self.tracker.trial_run(row["run_key"], _name(row["configuration"], row["seed"]))
                self.tag(row["run_key"])
                self.tracker.finish(row["run_key"], rec, trial_dir(self.p.out, row["run_key"]))


def _name(configuration: str, seed: int) -> str:
    return f"{configuration} · seed {seed} · refine"


class _Space:
    """OptunaSearch's define-by-run space: the sampled value, and the run key of its trial (Tune's config carries
    it, so the backend's callback reports the trial under its key). Holds live objects, so it pickles to nothing
    (Tune saves its searcher; a Tuner is never restored here: the Optuna storage is what resumes)."""

    def __init__(self, points: _Points, phase: _Phase, low: float, high: float):
        self.points, self.phase, self.low, self.high = points, phase, low, high

    def __getstate__(self):
        return {}

    def __call__(self, ot) -> dict:
        value = ot.suggest_float(self.points.over, self.low, self.high)
        spec = self.points({self.points.over: value})
        self.phase.add(spec, _name(spec.configuration, spec.seed))
        return {"run_key": spec.run_key}


def _requeue(study) -> int:
    """Trials a killed driver left RUNNING in the storage (one driver per results folder: none is live) are ended as
    failed and their points queued first, so the resumed refinement trains them (from their checkpoints) rather
    than new ones. Returns how many."""
    import optuna

    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params)
    return len(stale)


def _completed(study) -> list:
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def _search(points: _Points, phase: _Phase, name: str, storage, left: int, seed: int) -> None:
    """Spend `left` trials of one (feature level, pretraining) study through Ray Tune; retries as in the grid."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    p, s = points.p, points.p.spec.search
    low, high = (s.low, s.high) if s.over == "psi_target" else (math.log10(s.low), math.log10(s.high))
    searcher = OptunaSearch(_Space(points, phase, low, high), metric=s.metric, mode="max", study_name=name,
                            storage=storage, seed=seed)
    retries = p.spec.resources.retries
    trainable = tune.with_parameters(_trainable, points=points, metric=s.metric, retries=retries)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": p.spec.resources.cpu, "gpu": p.spec.resources.gpu}),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=left, max_concurrent_trials=p.spec.max_concurrent),
        run_config=tune.RunConfig(name=f"search-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=str((p.out / "ray").resolve()), callbacks=[phase.forward()], verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=retries)))
    tuner.fit()


def _rows(points: _Points, name: str, trials: list) -> list[dict]:
    """The rows `collect` completes from the trial folders: as in trials.parquet, plus the Optuna columns."""
    rows = []
    for t in trials:
        trial = points.trial(t.params[points.over])
        extra = {points.over: t.params[points.over]} if points.over != "psi_target" else {}
        rows.append({"run_key": trial.run_key, "configuration": trial.configuration, "psi_target": None,
                     **trial.factors(), **extra, "val_psnr": t.value if math.isfinite(t.value) else None,
                     "optuna_study": name, "optuna_trial": t.number})
    return rows


def require_optuna() -> None:
    """`search:` needs optuna, which is an extra (`study[search]`): where it is missing, one line, before anything
    runs."""
    from importlib import import_module

    try:
        import_module("optuna")
    except ImportError:
        raise StudyError("search: needs optuna: pip install 'study[search]'") from None


def refine(p: Plan, data, encoders, live=None) -> pd.DataFrame:
    """Run what is left of each (feature level, pretraining) budget; write and return the table of all refinement
    trials. `live`: the driver's view of running trials (`events()`, `add(spec, name)`, `tracker`), or None."""
    require_optuna()
    import optuna

    from study.backends.ray import ensure_ray

    s, phase, rows = p.spec.search, _Phase(p, live), []
    light = replace(p, trials=[])  # what a trial spec needs, without the grid (pickled to every Ray worker)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(p.out / 'search.db').resolve()}")
    started = ensure_ray()
    try:
        for level in p.spec.factors.feature_level:
            for pre in p.spec.factors.pretraining:
                points, name = _Points(light, data, encoders, level, pre), f"{p.spec.name}:{level}:{pre}:{s.over}"
                study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
                _requeue(study)
                done = len(_completed(study))
                if s.budget > done:
                    _search(points, phase, name, storage, s.budget - done, s.seed + done)
                rows += _rows(points, name, _completed(optuna.load_study(study_name=name, storage=storage)))
    finally:
        if started:
            import ray

            ray.shutdown()
    phase.settle(rows)
    table, _ = collect(p.out, rows)
    write_parquet(table, p.out / "search.parquet")
    return table
