"""Paper 2's perception metrics inside a study (issue #19): CT-NIQE every epoch and at test, LPIPS where its backbone
is in torchvision's cache, a metric whose backbone is not skipped with a note (job log, record, report), and the
consistency analysis reading them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import torch

from helpers import stage_backbone, tiny_spec, write_spec


def test_a_study_measures_ct_niqe_and_lpips_and_names_the_metric_it_could_not_compute(tmp_path):
    from torchvision.models import alexnet

    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"  # AlexNet staged (a seeded stand-in), VGG-16 absent
    torch.manual_seed(0)
    stage_backbone(checkpoints, alexnet(), "alexnet-owt-7be5be79.pth")
    raw = tiny_spec(tmp_path, name="perc", training={"epochs": 4, "steps_per_epoch": 20, "val_metrics": ["psnr", "ct_niqe"]},
                    metrics=["psnr", "ssim", "rmse_hu", "ct_niqe", "lpips_alex", "lpips_vgg"])
    path = write_spec(tmp_path, raw)
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "TORCH_HOME": str(tmp_path / "torch")}
    res = subprocess.run([sys.executable, "-m", "study", "run", str(path)], capture_output=True, text=True,
                         timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "perc"
    missing = str(checkpoints / "vgg16-397923af.pth")
    assert "note: metric lpips_vgg will be skipped: ImageNet VGG-16 weights not found at" in res.stdout, res.stdout
    assert "metric lpips_vgg skipped: ImageNet VGG-16 weights not found at" in res.stdout  # each trial's log

    for folder in (out / "trials").iterdir():
        history = json.loads((folder / "history.json").read_text())
        assert len(history) == 4 and all("val_ct_niqe" in h for h in history)  # NaN where an output is flat
    images = pd.read_parquet(out / "per_image.parquet")
    for col in ("input_ct_niqe", "lpips_alex", "input_lpips_alex"):
        assert images[col].notna().all() and (images[col] >= 0).all(), col
    assert images["ct_niqe"].notna().any()
    assert "lpips_vgg" not in images
    assert (images["input_lpips_alex"] > 0).all()  # the low-dose input differs from the reference
    trials = pd.read_parquet(out / "trials.parquet")
    assert all(json.loads(text) == {"lpips_vgg": json.loads(text)["lpips_vgg"]} and missing in json.loads(text)["lpips_vgg"]
               for text in trials["skipped_metrics"])

    report = (out / "report" / "report.md").read_text()
    assert report.count("\n- `lpips_vgg`: ") == 1 and "- `study never" not in report
    assert "**Metrics not computed.**" in report and f"`lpips_vgg`: ImageNet VGG-16 weights not found at {missing}" \
        in report
    assert "CT-NIQE" in report and "LPIPS" in report  # the Methods say how they were computed
    trajectories = pd.read_csv(out / "report" / "stats" / "consistency_trajectories.csv")
    assert "val_ct_niqe" in set(trajectories["metric"])
