"""MLflow for `study pretrain`: one run per pretrained encoder (params, loss and accuracy per step, provenance, the
weights file), in the store and experiment conventions of the study's own runs (`study.tracking.conventions`)."""

from __future__ import annotations

import time
from pathlib import Path

from study.tracking.conventions import is_number, log_params, open_experiment, source_tags


def log_pretraining(uri: str, experiment: str, params: dict, history: list[tuple[int, float, float]],
                    meta: dict, weights: Path) -> str:
    """One MLflow run for a `study pretrain`: params, loss/accuracy per step, provenance, the weights file."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    location = (Path(weights).resolve().parent / "mlartifacts").as_uri() if uri.startswith("sqlite:") else None
    exp_id = open_experiment(client, uri, experiment, location).experiment_id
    run = client.create_run(exp_id, run_name=Path(weights).stem, tags={"study.role": "pretrain", **source_tags()})
    rid = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(name, float(v), now, step) for step, loss, acc in history for name, v in (("loss", loss), ("accuracy", acc))]
    metrics += [Metric(k, float(v), now, 0) for k, v in meta.items() if is_number(v)]
    log_params(client, rid, params)
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    client.set_tag(rid, "weights_id", str(meta.get("weights_id", "")))
    client.log_artifact(rid, str(weights))
    client.set_terminated(rid, "FINISHED")
    return rid
