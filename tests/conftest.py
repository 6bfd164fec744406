"""Shared fixtures: one real two-node Ray cluster for the whole session, tiny study specs, a VGG-19 weights file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster on this machine: a head and a worker, each started with `ray start` on 127.0.0.1
    (1 CPU each), stopped by pid at the end. Yields its address; drivers in subprocesses get it as RAY_ADDRESS."""
    from ray_cluster import RayCluster

    cluster = RayCluster().start()
    yield cluster.address
    cluster.stop()


@pytest.fixture(scope="session")
def ray_session(ray_cluster):
    """This process connected to the shared cluster; the Ray backend reuses an initialised Ray."""
    import ray

    if not ray.is_initialized():
        ray.init(address=ray_cluster, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def vgg_weights_file(tmp_path_factory) -> Path:
    """A torchvision-format VGG-19 state_dict (full model keys) written the way users save one."""
    import torch
    from torchvision.models import vgg19

    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("weights") / "vgg19_custom.pth"
    torch.save(vgg19().state_dict(), path)
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


@pytest.fixture(autouse=True)
def _no_global_mlflow_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
