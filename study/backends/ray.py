"""Ray Tune backend: a `Tuner` over the pending trials, one Tune trial per run key.

The grid is exhaustive and never early-stopped (no scheduler): stopping some configurations early would bias the
paired comparison the statistics rely on. Each trial reports every epoch with `ray.tune.report`; the driver's
callback forwards those results to `Events` (and so to MLflow) and reads the trial's record when it ends.
Checkpoints live in the trial folder (`trials/<run_key>/checkpoint.pt`): a retried trial resumes from them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from study.backends import Events, Options
from study.interrupt import reclaim_sigterm
from study.store.results import read_record
from study.trial.train import is_epoch_metric

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def mark_node() -> None:
    """Name this worker's Ray node in the trial's events.log lines (which node each attempt ran on)."""
    import ray

    os.environ["STUDY_NODE"] = ray.get_runtime_context().get_node_id()


def _trainable(config, specs, retries=0):
    from ray import tune

    from study.trial.execute import execute

    mark_node()
    spec = specs[config["run_key"]]
    record = execute(spec, on_epoch=lambda epoch, m: tune.report({**m, "epoch": epoch}), retries=retries)
    tune.report({"epoch": -1, "trial_status_finished": float(record["status"] == "finished")})


def ensure_ray(num_cpus: int | None = None) -> bool:
    """Connect to `$RAY_ADDRESS` or start a local Ray. Returns True if this call started it."""
    import ray

    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS")
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    reclaim_sigterm()  # ray.init installed sys.exit(15) for SIGTERM; the driver's own handler flushes MLflow first
    return True


def make_forward(base):
    """The Tune callback class (a subclass of `base`, i.e. `ray.tune.Callback`, passed in so that Ray is imported only
    where it runs) that forwards Tune's trial events to `Events`, by run key: `cls(events, by_key)`, where `by_key`
    maps each run key to its TrialSpec (whose folder holds the record a finished or failed trial reports)."""

    class _Forward(base):
        """Driver-side: Tune events → `Events`. Holds live objects, so it pickles to nothing (Tune saves its
        run config; this study never restores a Tuner — resuming is done by run key, see study.running.run)."""

        def __init__(self, events: Events, by_key: dict):
            self.events, self.by_key = events, by_key

        def __getstate__(self):
            return {}

        def __setstate__(self, state):
            self.events, self.by_key = Events(), {}

        def on_trial_start(self, iteration, trials, trial, **info):
            self.events.on_start(trial.config["run_key"])

        def on_trial_result(self, iteration, trials, trial, result, **info):
            epoch = int(result.get("epoch", -1))
            if epoch >= 0:
                metrics = {k: v for k, v in result.items() if is_epoch_metric(k)}
                self.events.on_epoch(trial.config["run_key"], epoch, metrics)

        def _done(self, trial, error: str | None = None):
            key = trial.config["run_key"]
            record = read_record(Path(self.by_key[key].out_dir))
            if record is None:  # the worker died before writing its record, and Tune has no retry left for it
                record = _lost(self.by_key[key], trial, error)
            if record is not None:  # None: a live process still holds the trial and will write its record
                self.events.on_done(key, record)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._done(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._done(trial, _error_text(trial))

    return _Forward


def _error_text(trial) -> str | None:
    """Ray's text of the trial's last error: its local error file (written before this callback), else storage."""
    try:
        local = trial.error_file
        if local and Path(local).is_file():
            return Path(local).read_text(errors="replace")
        return trial.get_error() or None
    except Exception:  # noqa: BLE001 - the error file may be gone with its node
        return None


def _lost(spec, trial, error: str | None) -> dict | None:
    """The failed record of a trial whose Ray worker was lost: written to the trial folder (reason and Ray's text)."""
    from study.trial.execute import record_failure

    lines = [ln for ln in (error or "").strip().splitlines() if ln.strip()]
    last = lines[-1].strip()[:300] if lines else "no result and no error from Ray"
    tries = getattr(trial, "num_failures", 0)
    reason = f"Ray worker lost after {tries} failure(s), no retry left: {last}"
    return record_failure(spec, reason, error)


def run(specs, events: Events, options: Options) -> None:
    import ray
    from ray import tune

    by_key = {s.run_key: s for s in specs}
    if not specs:
        return
    forward = make_forward(tune.Callback)(events, by_key)
    started = ensure_ray()
    try:
        trainable = tune.with_resources(tune.with_parameters(_trainable, specs=by_key, retries=options.retries),
                                        {"cpu": options.cpu, "gpu": options.gpu})
        tuner = tune.Tuner(
            trainable,
            param_space={"run_key": tune.grid_search(list(by_key))},
            tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"run-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(Path(options.storage).resolve()),
                callbacks=[forward],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=options.retries),
            ),
        )
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
