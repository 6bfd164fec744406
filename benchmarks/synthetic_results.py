"""A synthetic results folder shaped like a real grid (the contract tables written directly), for benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

LEVELS = [f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for c in range(1, n + 1)]  # 16
PRETRAININGS = ["imagenet", "medical", "random"]
LAMS = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def grid_folder(root: Path, *, levels: int = 16, pretrainings: int = 3, lams: int = 8, seeds: int = 5,
                n_images: int = 50, seed: int = 0) -> Path:
    """levels × pretrainings × lams × seeds trials + one pixel-only baseline per seed (16·3·8·5 + 5 = 1,925)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 2, n_images)
    configs = [("none", "none", 0.0)] + [(lv, p, lam) for lv in LEVELS[:levels] for p in PRETRAININGS[:pretrainings]
                                         for lam in LAMS[:lams]]
    patient = np.arange(n_images) * 2 // n_images
    cluster = rng.normal(0, 0.2, (len(configs), 2))
    trials, images = [], []
    for i, (level, pre, lam) in enumerate(configs):
        name = "pixel-only" if lam == 0 else f"{level} · {pre} · λ={lam:g}"
        effect = 0.0 if lam == 0 else -abs(np.log10(lam) + 3) * 0.2 + (0.3 if pre == "medical" else 0.0)
        for s in range(seeds):
            key = f"k{i:04d}s{s}"
            psi = 0.0 if lam == 0 else float(lam / (lam + 1e-3))
            trials.append({"run_key": key, "status": "finished", "configuration": name, "feature_level": level,
                           "pretraining": pre, "lam": lam, "psi_target": None, "seed": s, "psi": psi,
                           "pixel_loss": 1e-3, "perceptual_loss": 0.0 if lam == 0 else 1e-2, "wall_s": 600.0,
                           "error": None})
            # per-network offset (seed luck, SD 0.3 dB) and a configuration × patient effect (SD 0.2 dB, 2 patients)
            psnr = 30 + difficulty + effect + cluster[i][patient] + rng.normal(0, 0.3) + rng.normal(0, 0.5, n_images)
            images.append(pd.DataFrame({
                "run_key": key, "image_id": [f"img{j:04d}" for j in range(n_images)], "patient": [f"P{p}" for p in patient],
                "block": [f"img{j:04d}" for j in range(n_images)], "test_set": "test", "configuration": name,
                "feature_level": level, "pretraining": pre, "lam": lam, "psi_target": None, "seed": s, "psnr": psnr,
                "ssim": 0.8 + psnr / 1000, "rmse_hu": 40 - psnr / 2, "input_psnr": 25 + difficulty,
                "input_ssim": 0.7, "input_rmse_hu": 60.0}))
    out = root / f"grid-{len(trials)}"
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(trials).to_parquet(out / "trials.parquet")
    pd.concat(images, ignore_index=True).to_parquet(out / "per_image.parquet")
    for t in trials:  # 10 epochs of loss terms and validation PSNR each (what the consistency section reads)
        epochs = np.arange(10)
        pix = 1e-3 * (1 + 1 / (1 + epochs)) * rng.uniform(0.9, 1.1, 10)
        perc = t["perceptual_loss"] * (1 + 1 / (1 + epochs))
        w = 0.0 if t["lam"] == 0 else t["lam"]
        rows = [{"epoch": int(e), "train_loss": float(a + w * b), "pixel_loss": float(a), "perceptual_loss": float(b),
                 "loss_mse": float(a), "share_mse": float(a / (a + w * b)),
                 **({"loss_perceptual": float(b), "share_perceptual": float(w * b / (a + w * b))} if w else {}),
                 "val_psnr": float(28 + np.log1p(e) + rng.normal(0, 0.1))} for e, a, b in zip(epochs, pix, perc)]
        (out / "trials" / t["run_key"]).mkdir(parents=True, exist_ok=True)
        (out / "trials" / t["run_key"] / "history.json").write_text(json.dumps(rows))
    (out / "study.yaml").write_text(yaml.safe_dump({"name": out.name, "metric_window": "abdomen"}))
    return out
