"""Synthetic results folders (the contract tables written directly) with planted or null effects.

PSNR of network (configuration c, seed s) on image i of patient p:
    30 + difficulty_i + effect(c) + patient_p·c + network_cs + noise
where `net_sd` is the SD of the per-trained-network offset (seed luck), `patient_sd` the SD of a configuration ×
patient interaction (clustering of the test images within patients), and `noise` the per-image residual.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

LEVELS = ("block3_conv2", "block5_conv4")
PRETRAININGS = ("imagenet", "medical")
LAMS = (0.01, 0.1)
MAGNITUDE = {("block3_conv2", "imagenet"): 400.0, ("block3_conv2", "medical"): 160.0,
             ("block5_conv4", "imagenet"): 0.5, ("block5_conv4", "medical"): 8.0}  # L_P at L_pixel = 1e-4 (paper 1)


def label(level, pre, lam):
    return "pixel-only" if lam == 0 else f"{level} · {pre} · λ={lam:g}"


def tables(*, n_images=30, seeds=(0, 1), effect=None, noise=0.5, net_sd=0.0, patients=1, patient_sd=0.0,
           failed=0, seed=0, lams=LAMS):
    """(trials, per_image) DataFrames of a 2 × 2 × len(lams) study (+ pixel-only baseline). `effect(level, pre, lam)`
    adds to PSNR (SSIM gets effect/100, RMSE −effect)."""
    rng = np.random.default_rng(seed)
    effect = effect or (lambda level, pre, lam: 0.0)
    difficulty = rng.normal(0, 2, n_images)
    patient = np.arange(n_images) * patients // n_images
    configs = [("none", "none", 0.0)] + [(lv, p, lam) for lv in LEVELS for p in PRETRAININGS for lam in lams]
    trials, images = [], []
    image_ids = [f"img{j:03d}" for j in range(n_images)]
    for i, (level, pre, lam) in enumerate(configs):
        cluster = rng.normal(0, patient_sd, patients)[patient]
        psi = 0.0 if lam == 0 else lam * MAGNITUDE[level, pre] * 1e-2 / (1e-4 + lam * MAGNITUDE[level, pre] * 1e-2)
        for s in seeds:
            key = f"k{i:02d}s{s}"
            failed_now = bool(failed) and i == len(configs) - 1 and s == seeds[-1]
            trials.append({"run_key": key, "status": "failed" if failed_now else "finished",
                           "configuration": label(level, pre, lam), "feature_level": level, "pretraining": pre,
                           "lam": lam, "seed": s, "psi": psi, "pixel_loss": 1e-4,
                           "perceptual_loss": 0.0 if lam == 0 else MAGNITUDE[level, pre] * 1e-2, "wall_s": 10.0,
                           "error": "Diverged: non-finite loss at epoch 3" if failed_now else None})
            if failed_now:
                continue
            e = effect(level, pre, lam)
            psnr = 30 + difficulty + e + cluster + rng.normal(0, net_sd) + rng.normal(0, noise, n_images)
            images.append(pd.DataFrame({
                "run_key": key, "image_id": image_ids, "patient": [f"P{p}" for p in patient], "block": image_ids,
                "configuration": label(level, pre, lam), "feature_level": level, "pretraining": pre, "lam": lam,
                "seed": s, "psnr": psnr, "ssim": 0.8 + psnr / 1000 + e / 100, "rmse_hu": 40 - psnr / 2 - e,
                "input_psnr": 25 + difficulty, "input_ssim": 0.7, "input_rmse_hu": 60.0}))
    return pd.DataFrame(trials), pd.concat(images, ignore_index=True)


def results_folder(root: Path, *, name="synthetic", spec: dict | None = None, **kw) -> Path:
    """`tables(**kw)` written as a results folder; `spec` adds to (or overrides) its study.yaml (e.g. `analysis:`)."""
    trials, images = tables(**kw)
    out = root / name
    out.mkdir(parents=True)
    trials.to_parquet(out / "trials.parquet")
    images.to_parquet(out / "per_image.parquet")
    (out / "study.yaml").write_text(yaml.safe_dump({"name": name, "metric_window": "abdomen", **(spec or {})}))
    return out


def add_examples(folder: Path, image_ids=("img003", "img007"), size=32, skip=()) -> list[str]:
    """An examples.npz (study.trial.examples) in every finished trial of a `results_folder` but the run keys in
    `skip`: a disc with a small lesion as reference, its noisy low dose, and an output whose noise shrinks with the
    trial's index. Returns the run keys given one."""
    from study.spec import Window
    from study.trial.examples import Examples, write_npz

    trials = pd.read_parquet(folder / "trials.parquet")
    yy, xx = np.mgrid[:size, :size]
    ref = np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2, 50.0, -1000.0)
    ref[(yy - size / 2) ** 2 + (xx - size / 3) ** 2 < 4] = 20.0
    box = (size // 4, size // 4, size // 4)
    written = []
    for n, r in enumerate(trials[trials["status"] == "finished"].itertuples()):
        if r.run_key in skip:
            continue
        rng = np.random.default_rng(n)
        images = {i: (ref + rng.normal(0, 40, ref.shape), ref + rng.normal(0, 40 / (2 + n), ref.shape), ref)
                  for i in image_ids}
        write_npz(folder / "trials" / r.run_key / "examples.npz",
                  Examples(images, dict.fromkeys(image_ids, box), dict.fromkeys(image_ids, "lesion"), "lesions"),
                  Window())
        written.append(r.run_key)
    return written
