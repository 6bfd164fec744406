"""The MLflow conventions every run of this project follows, a study's (`study.tracking.runs`) and a `study pretrain`'s
(`study.tracking.pretrain`) alike: the default store in the results folder, the experiment (created with its artifact
location; an unreachable store is one line), params flattened and sent in batches, MLflow's git source tag, and which
values are metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

from study.errors import StudyError


def default_uri(results_dir: Path) -> str:
    """The study's own MLflow store: `mlflow.db` (sqlite) in its results folder."""
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


def open_experiment(client, uri: str, name: str, location: str | None):
    """The experiment `name`, created (with its artifacts at `location`) if missing; the first call on a fresh sqlite
    store creates its schema. An unreachable or broken store is a one-line StudyError."""
    try:
        exp = client.get_experiment_by_name(name)
    except Exception as err:  # noqa: BLE001
        raise StudyError(f"tracking.uri {uri!r}: cannot open the MLflow store ({type(err).__name__}: {err})") from None
    if exp is None:
        client.create_experiment(name, artifact_location=location)
        exp = client.get_experiment_by_name(name)
    return exp


def source_tags() -> dict:
    """MLflow's standard source tags: the git commit (without a "-dirty" mark; the `git_commit` param keeps it;
    `git_commit` is looked up once per process)."""
    from study.store.provenance import git_commit

    commit = git_commit()
    return {} if commit == "unknown" else {"mlflow.source.git.commit": commit.removesuffix("-dirty")}


def log_params(client, run_id: str, params: dict) -> None:
    """Nested params, flattened, in batches of 100 (MLflow's limit per call)."""
    from mlflow.entities import Param

    flat = [Param(k, str(v)[:6000]) for k, v in _flatten(params).items()]
    for i in range(0, len(flat), 100):
        client.log_batch(run_id, params=flat[i:i + 100])


def is_number(v) -> bool:
    """A value MLflow can log as a metric: an int or a float, not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)
