"""Helpers the tests import (fixtures live in tests/conftest.py): tiny study specs, writing them, reading MLflow runs.
The submodules hold the larger harnesses: synthetic results folders, DICOM files, a two-node Ray cluster, a
single-node SLURM."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]


def tiny_spec(tmp: Path, name: str = "tiny", **over) -> dict:
    """A study that runs in seconds: 64² phantoms, a 4-wide 3-level U-Net, 2 epochs × 3 steps."""
    spec = {
        "name": name,
        "backend": "local",
        "data": {"source": "phantom", "size": 64, "n_train": 4, "n_val": 2, "n_test": 4, "seed": 3, "n_angles": 48},
        "model": {"name": "unet", "channels": 4, "levels": 3},
        "training": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 2, "lr": 2e-3, "patch_size": 16, "threads": 1},
        "factors": {"feature_level": ["block1_conv2"], "pretraining": ["random"], "lam": [0, 0.1], "seed": [0]},
        "tracking": {"enabled": False, "example_images": 1},
        "output": str(tmp / name),
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def write_spec(tmp: Path, spec: dict, filename: str = "study.yaml") -> Path:
    path = tmp / filename
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def mlflow_runs(uri: str, experiment: str):
    """Runs of an experiment as a DataFrame shaped like `mlflow.search_runs` (run_id, status, tags.*, metrics.*,
    params.*), read through a client bound to `uri` so no test changes MLflow's global tracking URI."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    rows = []
    for run in client.search_runs([exp.experiment_id], max_results=10000):
        row = {"run_id": run.info.run_id, "status": run.info.status}
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stage_backbone(checkpoints: Path, model, name: str) -> None:
    """A torchvision model's state_dict saved as `checkpoints/name` (a stand-in for an ImageNet file in torchvision's
    cache); its classifier, which no metric or encoder uses, stored as zero-stride zeros so the file stays small
    (loading copies them into the full-size layers)."""
    import torch

    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.save({k: torch.zeros(()).expand(v.shape) if k.startswith("classifier.") else v
                for k, v in model.state_dict().items()}, checkpoints / name)


def delta_asking(n: int, k: int, net_var: float, test_term: float, alpha: float = 0.04, power: float = 0.8) -> float:
    """An effect at which analysis.adaptive plans exactly n seeds for k configurations: halfway (on a log scale)
    between the effects at which n and n − 1 seeds just reach `power` (pair_power grows with δ; two root finds)."""
    from scipy.optimize import brentq

    from analysis.adaptive import pair_power

    def root(m: int) -> float:
        return brentq(lambda ld: pair_power(m, k, net_var, test_term, float(np.exp(ld)), alpha) - power, -12, 12)

    return float(np.exp((root(n) + root(n - 1)) / 2))
