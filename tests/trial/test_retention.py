"""Retention (issue #18 item 3): a finished trial keeps `model.pt` (the selected weights, no optimiser state) instead
of its resume checkpoint, unless `training.keep_checkpoint`; the model is logged to the trial's MLflow run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import mlflow_runs, tiny_spec, write_spec
from study.tracking.conventions import default_uri
from study.trial.evaluate import predict
from study.trial.model_file import MODEL_KEYS, load_model


def _run(tmp_path, name: str, **over) -> list:
    path = write_spec(tmp_path, tiny_spec(tmp_path, name=name, factors={"lam": [0.1]}, **over), f"{name}.yaml")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # module fixture: before the autouse one
    res = subprocess.run([sys.executable, "-m", "study", "run", str(path)], capture_output=True, text=True, timeout=300,
                         env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return sorted((tmp_path / name / "trials").iterdir())


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """A finished one-trial study with the defaults (and MLflow on): its root folder and its trial folder."""
    root = tmp_path_factory.mktemp("retention")
    [folder] = _run(root, "pruned", tracking={"enabled": True, "example_images": 1})
    return root, folder


def test_a_finished_trial_keeps_the_selected_model_alone_and_logs_it(pruned):
    tmp_path, folder = pruned
    assert not (folder / "checkpoint.pt").exists()
    raw = torch.load(folder / "model.pt", weights_only=True)
    assert set(MODEL_KEYS) <= set(raw) and "opt" not in raw and raw["run_key"] == folder.name
    assert raw["epoch"] == json.loads((folder / "result.json").read_text())["best_epoch"]

    model, meta = load_model(folder / "model.pt")
    data = next((tmp_path / "pruned" / "data").glob("data-*"))
    ld = np.load(data / "test_ld.npy")[:2]
    out = predict(model, ld, tuple(meta["hu_range"]), "cpu")
    assert out.shape == ld.shape and np.isfinite(out).all() and not np.allclose(out, ld)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in raw["model"].items())

    runs = mlflow_runs(default_uri(tmp_path / "pruned"), "pruned")
    child = runs[runs["tags.run_key"] == folder.name].iloc[0]
    artifacts = tmp_path / "pruned" / "mlartifacts" / child["run_id"] / "artifacts"
    assert (artifacts / "model" / "model.pt").read_bytes() == (folder / "model.pt").read_bytes()


def test_keep_checkpoint_keeps_both_and_does_not_change_the_run_key(tmp_path, pruned):
    pruned = pruned[1]
    [kept] = _run(tmp_path, "kept", tracking={"enabled": True, "example_images": 1},
                  training={"keep_checkpoint": True})
    assert kept.name == pruned.name  # keep_checkpoint changes no outcome, so no run key
    assert (kept / "checkpoint.pt").is_file() and (kept / "model.pt").is_file()
    ck, model = torch.load(kept / "checkpoint.pt", weights_only=True), torch.load(kept / "model.pt", weights_only=True)
    assert "opt" in ck and all(torch.equal(ck["best"]["model"][k], v) for k, v in model["model"].items())
    size = lambda folder: sum(f.stat().st_size for f in folder.iterdir())
    assert size(pruned) * 2 < size(kept)
