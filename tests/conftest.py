"""Shared fixtures: one real two-node Ray cluster for the whole session, this process connected to it, a VGG-19
weights file, no global MLflow URI. Helpers the tests import are in tests/helpers/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster on this machine: a head and a worker, each started with `ray start` on 127.0.0.1
    (1 CPU each), stopped by pid at the end. Yields its address; drivers in subprocesses get it as RAY_ADDRESS."""
    from helpers.ray_cluster import RayCluster

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


@pytest.fixture(autouse=True)
def _no_global_mlflow_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def figure_titles(monkeypatch) -> dict:
    """Figure file name → the titles of its panels (newlines as spaces), recorded as analysis.figures.save writes it."""
    from analysis import figures

    seen, save = {}, figures.save

    def record(fig, path):
        seen[Path(path).name] = [" ".join(ax.get_title().split("\n")) for ax in fig.axes if ax.get_title()]
        return save(fig, path)

    monkeypatch.setattr(figures, "save", record)
    return seen
