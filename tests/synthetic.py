"""Synthetic results folders (the contract tables written directly) with planted or null effects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

LEVELS = ("block3_conv2", "block5_conv4")
PRETRAININGS = ("imagenet", "medical")
LAMS = (0.01, 0.1)


def label(level, pre, lam):
    return "pixel-only" if lam == 0 else f"{level} · {pre} · λ={lam:g}"


def results_folder(root: Path, *, n_images=30, seeds=(0, 1), effect=None, noise=0.5, failed=0, seed=0,
                   name="synthetic") -> Path:
    """A 2 × 2 × 2 (+ baseline) study. `effect(level, pre, lam)` adds to PSNR (SSIM gets effect/100, RMSE −effect);
    image difficulty is shared by all configurations (the blocking the tests rely on)."""
    rng = np.random.default_rng(seed)
    effect = effect or (lambda level, pre, lam: 0.0)
    difficulty = rng.normal(0, 2, n_images)
    configs = [("none", "none", 0.0)] + [(l, p, lam) for l in LEVELS for p in PRETRAININGS for lam in LAMS]
    trials, images = [], []
    for i, (level, pre, lam) in enumerate(configs):
        for s in seeds:
            key = f"k{i:02d}s{s}"
            status = "failed" if failed and i == len(configs) - 1 and s == seeds[-1] else "finished"
            failed_now = status == "failed"
            trials.append({"run_key": key, "status": status, "configuration": label(level, pre, lam),
                           "feature_level": level, "pretraining": pre, "lam": lam, "seed": s,
                           "psi": 0.0 if lam == 0 else 0.9, "pixel_loss": 1e-3, "perceptual_loss": 0.0 if lam == 0 else 1.0,
                           "wall_s": 10.0, "error": "Diverged: non-finite loss at epoch 3" if failed_now else None})
            if failed_now:
                continue
            e = effect(level, pre, lam)
            for j in range(n_images):
                psnr = 30 + difficulty[j] + e + rng.normal(0, noise)
                images.append({"run_key": key, "image_id": f"img{j:03d}", "patient": "p", "block": f"img{j:03d}",
                               "configuration": label(level, pre, lam), "feature_level": level, "pretraining": pre,
                               "lam": lam, "seed": s, "psnr": psnr, "ssim": 0.8 + psnr / 1000 + e / 100,
                               "rmse_hu": 40 - psnr / 2 - e, "input_psnr": 25 + difficulty[j],
                               "input_ssim": 0.7, "input_rmse_hu": 60.0})
    out = root / name
    out.mkdir(parents=True)
    pd.DataFrame(trials).to_parquet(out / "trials.parquet")
    pd.DataFrame(images).to_parquet(out / "per_image.parquet")
    (out / "study.yaml").write_text(yaml.safe_dump({"name": name, "metric_window": "abdomen"}))
    return out
