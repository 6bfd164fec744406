"""MLflow tracking: one parent run per study (per results folder), one child run per run key.

Idempotent: runs are found again by tags (`study.results_dir`, `run_key`), never by in-memory maps, so a resumed
study re-attaches to its runs instead of duplicating them, and a finished run is never logged twice.
All logging happens in the driver process (per-epoch metrics arrive through the backend's callbacks), so the
sqlite store has a single writer; the schema is created once, here, before any trial starts.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from study.errors import StudyError

_TERMINAL = {"FINISHED", "FAILED", "KILLED"}


def default_uri(results_dir: Path) -> str:
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


def _flatten(d: dict, prefix: str = "") -> dict:
    """Nested params as dotted MLflow param names (characters MLflow refuses in a name, e.g. the '+' of a loss
    called mse+perceptual, become '_')."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{re.sub(r'[^A-Za-z0-9_. :/-]', '_', str(k))}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if not isinstance(v, (list, tuple)) else json.dumps(v)
    return out


def _parent_filter(results_dir: Path) -> str:
    """How a study's parent run is found again: by role and results folder tags."""
    return f"tags.`study.role` = 'parent' AND tags.`study.results_dir` = '{Path(results_dir).resolve()}'"


def parent_status(uri: str, experiment: str, results_dir: Path) -> str | None:
    """The status of a study's parent run, or None (no store, experiment or run yet); changes nothing."""
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    found = client.search_runs([exp.experiment_id], max_results=1, filter_string=_parent_filter(results_dir))
    return found[0].info.status if found else None


class Tracker:
    """Driver-side MLflow logger for a study."""

    def __init__(self, uri: str, experiment: str, study_name: str, results_dir: Path, params: dict):
        import mlflow  # noqa: F401 - imported here so the rest of `study` works without touching MLflow
        from mlflow.tracking import MlflowClient

        self.results_dir = str(Path(results_dir).resolve())
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        try:
            exp = self.client.get_experiment_by_name(experiment)  # creates the sqlite schema on first use
        except Exception as err:  # noqa: BLE001
            raise StudyError(f"tracking.uri {uri!r}: cannot open the MLflow store ({type(err).__name__}: {err})") from None
        if exp is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (Path(self.results_dir) / "mlartifacts").as_uri()
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = exp.experiment_id
        self.parent_id = self._parent(study_name, params)
        self._runs: dict[str, str] = {}
        self._logged: dict[str, set[int]] = {}  # epochs already in each child run (a resumed trial may repeat one)

    def _search(self, filter_string: str):
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10)

    def _parent(self, study_name: str, params: dict) -> str:
        found = self._search(_parent_filter(self.results_dir))
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=study_name,
                                     tags={"study.role": "parent", "study.results_dir": self.results_dir, "study.name": study_name})
        self._log_params(run.info.run_id, params)
        return run.info.run_id

    def _log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        flat = [Param(k, str(v)[:6000]) for k, v in _flatten(params).items()]
        for i in range(0, len(flat), 100):
            self.client.log_batch(run_id, params=flat[i:i + 100])

    def trial_run(self, run_key: str, name: str = "", params: dict | None = None) -> str:
        """The child run for `run_key`: found by tag, or created once."""
        if run_key in self._runs:
            return self._runs[run_key]
        found = self._search(f"tags.run_key = '{run_key}' AND tags.`study.results_dir` = '{self.results_dir}'")
        if found:
            run_id = found[0].info.run_id
            self._logged[run_key] = {m.step for m in self.client.get_metric_history(run_id, "train_loss")}
        else:
            run = self.client.create_run(self.experiment_id, run_name=name or run_key,
                                         tags={"mlflow.parentRunId": self.parent_id, "run_key": run_key,
                                               "study.results_dir": self.results_dir})
            run_id = run.info.run_id
            self._logged[run_key] = set()
            if params:
                self._log_params(run_id, params)
        self._runs[run_key] = run_id
        return run_id

    def is_terminal(self, run_key: str) -> bool:
        run_id = self.trial_run(run_key)
        return self.client.get_run(run_id).info.status in _TERMINAL

    def log_epoch(self, run_key: str, epoch: int, metrics: dict) -> None:
        """One point per metric at step `epoch`; an epoch already logged (a trial resumed before it) is skipped."""
        from mlflow.entities import Metric

        run_id = self.trial_run(run_key)
        if int(epoch) in self._logged[run_key]:
            return
        now = int(time.time() * 1000)
        ms = [Metric(k, float(v), now, int(epoch)) for k, v in metrics.items() if k != "epoch" and _is_number(v)]
        self.client.log_batch(run_id, metrics=ms)
        self._logged[run_key].add(int(epoch))

    def _backfill(self, run_key: str, folder: Path) -> None:
        """Epochs the driver never saw (it was killed while the trial went on, or a SLURM task ran it) from the
        trial's history.json, so every child run has exactly one point per epoch."""
        path = Path(folder) / "history.json"
        if path.is_file():
            for metrics in json.loads(path.read_text()):
                self.log_epoch(run_key, int(metrics["epoch"]), metrics)

    def finish(self, run_key: str, record: dict, folder: Path) -> None:
        """Final metrics, artifacts and status of a trial's run; does nothing if the run already ended."""
        from mlflow.entities import Metric, RunTag

        from study.train import is_epoch_metric  # a summary value named like an epoch series → final_<name>

        if self.is_terminal(run_key):
            return
        run_id = self.trial_run(run_key)
        self._backfill(run_key, folder)
        now = int(time.time() * 1000)
        finals = [Metric(f"final_{k}" if is_epoch_metric(k) else k, float(v), now, 0)
                  for k, v in record.items() if _is_number(v) and k not in ("lam", "seed", "finished_at")]
        tags = [RunTag("status", record["status"])]
        if record.get("error"):
            tags.append(RunTag("error", str(record["error"])[:5000]))
        self.client.log_batch(run_id, metrics=finals, tags=tags)
        for name in ("per_image.parquet", "examples.png", "history.json", "result.json"):
            if (Path(folder) / name).is_file():
                self.client.log_artifact(run_id, str(Path(folder) / name))
        self.client.set_terminated(run_id, "FINISHED" if record["status"] == "finished" else "FAILED")

    def log_report(self, report_dir: Path) -> None:
        if Path(report_dir).is_dir():
            self.client.log_artifacts(self.parent_id, str(report_dir), artifact_path="report")

    def close(self, all_finished: bool) -> None:
        self.client.set_terminated(self.parent_id, "FINISHED" if all_finished else "FAILED")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def log_pretraining(uri: str, experiment: str, params: dict, history: list[tuple[int, float, float]],
                    meta: dict, weights: Path) -> str:
    """One MLflow run for a `study pretrain`: params, loss/accuracy per step, provenance, the weights file."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        location = (Path(weights).resolve().parent / "mlartifacts").as_uri() if uri.startswith("sqlite:") else None
        exp_id = client.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    run = client.create_run(exp_id, run_name=Path(weights).stem, tags={"study.role": "pretrain"})
    rid = run.info.run_id
    flat = [Param(k, str(v)[:6000]) for k, v in _flatten(params).items()]
    now = int(time.time() * 1000)
    metrics = [Metric(name, float(v), now, step) for step, loss, acc in history for name, v in (("loss", loss), ("accuracy", acc))]
    metrics += [Metric(k, float(v), now, 0) for k, v in meta.items() if _is_number(v)]
    for i in range(0, len(flat), 100):
        client.log_batch(rid, params=flat[i:i + 100])
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    client.set_tag(rid, "weights_id", str(meta.get("weights_id", "")))
    client.log_artifact(rid, str(weights))
    client.set_terminated(rid, "FINISHED")
    return rid
