"""A study's MLflow runs: one parent run per study, one child run per run key.

Idempotent: runs are found again by tags (`study.id`, the identity the results folder carries in `identity.json`, and
`run_key`), never by the folder's path or in-memory maps, so a resumed, moved or copied study re-attaches to its runs
instead of duplicating them. A trial's run mirrors its latest record (`study.finished_at`): a failed trial that a
later run finishes ends FINISHED with its final metrics. An epoch already in the store is never logged again.
All logging happens in the driver process (per-epoch metrics arrive through the backend's callbacks; one driver per
results folder, see `study.store.locks.driver_lock`), on a writer thread off the callbacks
(`study.tracking.writer`); the schema is created once, here, before any trial starts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from study.errors import StudyError
from study.store.results import read_study_id
from study.tracking.conventions import default_uri, is_number, log_params, open_experiment, source_tags

_TERMINAL = {"FINISHED", "FAILED", "KILLED"}


def _parent_filter(study_id: str) -> str:
    """How a study's parent run is found again: by role and study identity (not by where the folder is)."""
    return f"tags.`study.role` = 'parent' AND tags.`study.id` = '{study_id}'"


def _legacy_parent_filter(results_dir: str) -> str:
    """Parent runs logged before studies had an identity carry only the folder's path."""
    return f"tags.`study.role` = 'parent' AND tags.`study.results_dir` = '{results_dir}'"


def parent_status(uri: str, experiment: str, results_dir: Path) -> str | None:
    """The status of a study's parent run, or None (no identity, store, experiment or run yet); changes nothing."""
    from mlflow.tracking import MlflowClient

    study_id = read_study_id(results_dir)
    if study_id is None or (uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file()):
        return None
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    found = client.search_runs([exp.experiment_id], max_results=1, filter_string=_parent_filter(study_id))
    return found[0].info.status if found else None


def _relocate_artifacts(uri: str, experiment_id: str, old: str, new: str) -> None:
    """The results folder's own sqlite store after the folder moved: its experiment and runs still name artifact
    folders under the old path (MLflow fixes them at creation and has no call to change them), so point them at the
    `mlartifacts/` that moved with the folder. Only ever applied to the store inside the results folder."""
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, int(experiment_id)))
        db.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) WHERE experiment_id = ? AND "
                   "substr(artifact_uri, 1, ?) = ?", (new, len(old) + 1, int(experiment_id), len(old), old))
    try:  # this process may hold artifact repositories for the old paths (MLflow caches them by run id)
        from mlflow.tracking._tracking_service import utils

        utils._artifact_repos_cache.clear()
    except (ImportError, AttributeError):
        pass


class Tracker:
    """Driver-side MLflow logger for a study."""

    def __init__(self, uri: str, experiment: str, study_name: str, results_dir: Path, params: dict):
        from mlflow.tracking import MlflowClient

        self.results_dir = str(Path(results_dir).resolve())
        self.study_id = read_study_id(results_dir)
        if self.study_id is None:
            raise StudyError(f"{results_dir}: no identity.json — the study's identity is written when it starts")
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self._legacy = False  # runs found by the folder's path (logged before studies had an identity)
        location = (Path(self.results_dir) / "mlartifacts").as_uri() if uri.startswith("sqlite:") else None
        exp = open_experiment(self.client, uri, experiment, location)
        self.experiment_id = exp.experiment_id
        old = exp.artifact_location
        if uri == default_uri(Path(results_dir)) and old != location and old.endswith("/mlartifacts"):
            _relocate_artifacts(uri, exp.experiment_id, old, location)  # the folder was moved or copied
        self.parent_id = self._parent(study_name, params)
        self._runs: dict[str, str] = {}
        self._logged: dict[str, set[int]] = {}  # epochs already in each child run (a resumed trial may repeat one)

    def _search(self, filter_string: str):
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10)

    def _parent(self, study_name: str, params: dict) -> str:
        found = self._search(_parent_filter(self.study_id))
        if not found:
            found = self._search(_legacy_parent_filter(self.results_dir))
            self._legacy = bool(found)
            if found:
                self.client.set_tag(found[0].info.run_id, "study.id", self.study_id)
        if found:
            run_id = found[0].info.run_id
            if found[0].info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
            if found[0].data.tags.get("study.results_dir") != self.results_dir:  # where the study now lives
                self.client.set_tag(run_id, "study.results_dir", self.results_dir)
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=study_name,
                                     tags={"study.role": "parent", "study.id": self.study_id,
                                           "study.results_dir": self.results_dir, "study.name": study_name,
                                           **source_tags()})
        self._log_params(run.info.run_id, params)
        return run.info.run_id

    def _log_params(self, run_id: str, params: dict) -> None:
        log_params(self.client, run_id, params)

    def trial_run(self, run_key: str, name: str = "", params: dict | None = None, start: bool = False) -> str:
        """The child run for `run_key`: found by tag, or created once. `start`: the trial is starting (again), so a
        run that ended (a failed attempt) is RUNNING again until its new record arrives."""
        if run_key in self._runs:
            run_id = self._runs[run_key]
            if start and self.client.get_run(run_id).info.status in _TERMINAL:
                self.client.update_run(run_id, status="RUNNING")
            return run_id
        found = self._search(f"tags.run_key = '{run_key}' AND tags.`study.id` = '{self.study_id}'")
        if not found and self._legacy:
            found = self._search(f"tags.run_key = '{run_key}' AND tags.`study.results_dir` = '{self.results_dir}'")
            if found:
                self.client.set_tag(found[0].info.run_id, "study.id", self.study_id)
        if found:
            run_id = found[0].info.run_id
            self._logged[run_key] = self._steps(run_id)
            if start and found[0].info.status in _TERMINAL:
                self.client.update_run(run_id, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name=name or run_key,
                                         tags={"mlflow.parentRunId": self.parent_id, "run_key": run_key,
                                               "study.id": self.study_id, "study.results_dir": self.results_dir,
                                               **source_tags()})
            run_id = run.info.run_id
            self._logged[run_key] = set()
            if params:
                self._log_params(run_id, params)
        self._runs[run_key] = run_id
        return run_id

    def tag_run(self, run_key: str, tag: str, value: str) -> None:
        self.client.set_tag(self.trial_run(run_key), tag, value)

    def _steps(self, run_id: str) -> set[int]:
        return {m.step for m in self.client.get_metric_history(run_id, "train_loss")}

    def log_epoch(self, run_key: str, epoch: int, metrics: dict) -> None:
        self.log_epochs(run_key, [(epoch, metrics)])

    def log_epochs(self, run_key: str, points: list[tuple[int, dict]]) -> None:
        """One point per metric at step `epoch` for each (epoch, metrics), in as few `log_batch` calls as MLflow
        allows (1,000 metrics each). An epoch already logged (a trial resumed before it) is skipped; the store is
        asked once per call with a new epoch, so a point that some other process logged is not written twice."""
        from mlflow.entities import Metric

        run_id = self.trial_run(run_key)
        if any(int(e) not in self._logged[run_key] for e, _ in points):
            self._logged[run_key] |= self._steps(run_id)
        now, ms, new = int(time.time() * 1000), [], set()
        for epoch, metrics in points:
            if int(epoch) in self._logged[run_key] | new:
                continue
            new.add(int(epoch))
            ms += [Metric(k, float(v), now, int(epoch)) for k, v in metrics.items() if k != "epoch" and is_number(v)]
        for i in range(0, len(ms), 1000):
            self.client.log_batch(run_id, metrics=ms[i:i + 1000])
        self._logged[run_key] |= new

    def kill(self, run_keys) -> None:
        """The study was interrupted (SIGTERM, Ctrl-C): the runs of trials still running and the parent end KILLED
        (the next `study run` sets them RUNNING again and brings them up to date)."""
        for key in run_keys:
            if key in self._runs:
                self.client.set_terminated(self._runs[key], "KILLED")
        self.client.set_terminated(self.parent_id, "KILLED")

    def _backfill(self, run_key: str, folder: Path) -> None:
        """Epochs the driver never saw (it was killed while the trial went on, or a SLURM task ran it) from the
        trial's history.json, so every child run has exactly one point per epoch."""
        path = Path(folder) / "history.json"
        if path.is_file():
            self.log_epochs(run_key, [(int(m["epoch"]), m) for m in json.loads(path.read_text())])

    def _mirrors(self, run_id: str, record: dict) -> bool:
        """True if the run already ended with this very record (runs logged before the `study.finished_at` tag:
        with the same status)."""
        run = self.client.get_run(run_id)
        if run.info.status not in _TERMINAL:
            return False
        logged = run.data.tags.get("study.finished_at")
        if logged is not None:
            return logged == str(record.get("finished_at"))
        return run.info.status == ("FINISHED" if record["status"] == "finished" else "FAILED")

    def finish(self, run_key: str, record: dict, folder: Path) -> None:
        """Final metrics, artifacts and status of a trial's run, from its latest record; does nothing if the run
        already shows that record. A run that ended FAILED and whose trial a later run finished is brought up to
        date: FINISHED, final metrics, the old error tag removed."""
        from mlflow.entities import Metric, RunTag

        from study.trial.train import is_epoch_metric  # a summary value named like an epoch series → final_<name>

        run_id = self.trial_run(run_key)
        if self._mirrors(run_id, record):
            return
        self._backfill(run_key, folder)
        now = int(time.time() * 1000)
        finals = [Metric(f"final_{k}" if is_epoch_metric(k) else k, float(v), now, 0)
                  for k, v in record.items() if is_number(v) and k not in ("lam", "seed", "finished_at")]
        tags = [RunTag("status", record["status"]), RunTag("study.finished_at", str(record.get("finished_at")))]
        if record.get("error"):
            tags.append(RunTag("error", str(record["error"])[:5000]))
        elif "error" in self.client.get_run(run_id).data.tags:
            self.client.delete_tag(run_id, "error")
        self.client.log_batch(run_id, metrics=finals, tags=tags)
        for name in ("per_image.parquet", "examples.png", "examples.npz", "history.json", "result.json"):
            if (Path(folder) / name).is_file():
                self.client.log_artifact(run_id, str(Path(folder) / name))
        if (Path(folder) / "model.pt").is_file():  # the trial's selected model (study.trial.model_file.load_model)
            self.client.log_artifact(run_id, str(Path(folder) / "model.pt"), artifact_path="model")
        self.client.set_terminated(run_id, "FINISHED" if record["status"] == "finished" else "FAILED")

    def log_report(self, report_dir: Path) -> None:
        if Path(report_dir).is_dir():
            self.client.log_artifacts(self.parent_id, str(report_dir), artifact_path="report")

    def log_file(self, path: Path) -> None:
        """One file of the results folder (e.g. an adaptive study's stages.json) as an artifact of the parent run."""
        if Path(path).is_file():
            self.client.log_artifact(self.parent_id, str(path))

    def close(self, all_finished: bool) -> None:
        self.client.set_terminated(self.parent_id, "FINISHED" if all_finished else "FAILED")

