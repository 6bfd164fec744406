"""Synthetic result tables from stated variance components: the `trials` and `per_image` tables of a factorial
perceptual-loss study (feature level × pretraining × λ, plus the pixel-only baseline), with planted or no effects.

Used to check the analysis by Monte Carlo (its false-claim rate and power) and to plan designs. For one metric, in
its own unit (PSNR in dB; SSIM = 0.01 × the same draw; RMSE in HU = −2 × it), network n = (configuration c, seed s)
on slice i of patient p scores

    base + difficulty_i + effect(c) + (pretraining × patient)_p + (c × patient)_cp + (c × image)_ci + network_cs + e

Every component is drawn afresh for every metric (the metrics of a synthetic study are independent replicates of
one design). `trials.attrs["truth"][metric]` holds, per configuration, the true mean a claim is about: over the
population of patients (`patients`: the planted effect) and over these test patients (`these_test_patients`: the
planted effect plus the patient terms of the patients drawn, their images random). Pure numpy/pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

BASELINE = "pixel-only"
#: L_P at L_pixel = 1e-4 (paper 1's logged magnitudes); other cells get MAGNITUDE_OTHER
MAGNITUDE = {("block3_conv2", "imagenet"): 400.0, ("block3_conv2", "medical"): 160.0,
             ("block5_conv4", "imagenet"): 0.5, ("block5_conv4", "medical"): 8.0}
MAGNITUDE_OTHER = 20.0
PIXEL_LOSS = 1e-4
METRIC_SCALE = {"psnr": (30.0, 1.0), "ssim": (0.8, 0.01), "rmse_hu": (40.0, -2.0)}  # base, unit per dB


@dataclass(frozen=True)
class Components:
    """Standard deviations (dB) of the random terms; `net_df` makes the network offsets t-distributed (heavy
    tails) with that many degrees of freedom, scaled to SD `net_sd`."""

    net_sd: float = 0.3
    config_patient_sd: float = 0.2
    pretraining_patient_sd: float = 0.0
    config_image_sd: float = 0.0
    residual_sd: float = 0.5
    difficulty_sd: float = 2.0
    net_df: float | None = None


@dataclass(frozen=True)
class Design:
    levels: tuple[str, ...] = ("block3_conv2", "block5_conv4")
    pretrainings: tuple[str, ...] = ("imagenet", "medical")
    lams: tuple[float, ...] = (0.001, 0.01, 0.1)
    seeds: int = 3
    patients: int = 2
    slices: int = 40  # per patient
    baseline: bool = True
    failed_share: float = 0.0  # each non-baseline trial fails with this probability (no per-image rows)

    def configurations(self) -> list[tuple[str, str, float]]:
        grid = [(lv, p, lam) for lv in self.levels for p in self.pretrainings for lam in self.lams]
        return ([("none", "none", 0.0)] if self.baseline else []) + grid


def label(level: str, pre: str, lam: float) -> str:
    return BASELINE if lam == 0 else f"{level} · {pre} · λ={lam:g}"


def psi_of(level: str, pre: str, lam: float) -> float:
    lp = MAGNITUDE.get((level, pre), MAGNITUDE_OTHER) * 1e-2
    return 0.0 if lam == 0 else lam * lp / (PIXEL_LOSS + lam * lp)


Effect = Callable[[str, str, float, float], float]  # (level, pretraining, λ, Ψ) → dB


def _network_offsets(rng: np.random.Generator, c: Components, n: int) -> np.ndarray:
    if c.net_df is None:
        return rng.normal(0, c.net_sd, n)
    scale = c.net_sd / np.sqrt(c.net_df / (c.net_df - 2)) if c.net_df > 2 else c.net_sd
    return rng.standard_t(c.net_df, n) * scale


def study_tables(design: Design = Design(), components: Components = Components(), effect: Effect | None = None,
                 seed: int = 0, metrics: tuple[str, ...] = ("psnr",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials, per_image) of one synthetic study; `effect` adds dB to a configuration (0 everywhere if None)."""
    rng = np.random.default_rng(seed)
    configs = design.configurations()
    n_img = design.patients * design.slices
    patient = np.repeat(np.arange(design.patients), design.slices)
    keys = [(i, s) for i in range(len(configs)) for s in range(design.seeds)]
    failed = {(i, s) for i, s in keys if configs[i][2] != 0 and rng.random() < design.failed_share}
    ok = [k for k in keys if k not in failed]
    trials = pd.DataFrame([_trial_row(configs[i], i, s, (i, s) in failed) for i, s in keys])
    image_ids = [f"p{p}-{j:03d}" for p, j in zip(patient, range(n_img))]
    meta = pd.DataFrame({"image_id": np.tile(image_ids, len(ok)), "patient": np.tile([f"P{p}" for p in patient], len(ok))})
    meta["block"] = meta["image_id"]
    rows = pd.DataFrame([{"run_key": f"k{i:03d}s{s}", "configuration": label(*configs[i]), "feature_level": configs[i][0],
                          "pretraining": configs[i][1], "lam": configs[i][2], "seed": s} for i, s in ok])
    per_image = pd.concat([rows.loc[rows.index.repeat(n_img)].reset_index(drop=True), meta], axis=1)
    truth = {}
    for m in metrics:
        base, unit = METRIC_SCALE[m]
        db, planted, fixed = _draw(rng, design, components, effect, configs, ok, patient)
        per_image[m] = base + unit * db.ravel()
        per_image[f"input_{m}"] = base + unit * (db.min() - 3.0)
        truth[m] = pd.DataFrame({"patients": base + unit * planted, "these_test_patients": base + unit * fixed},
                                index=[label(*c) for c in configs])
    trials.attrs["truth"] = truth
    return trials, per_image


def _draw(rng, design: Design, comp: Components, effect: Effect | None, configs, ok,
          patient) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(finished networks × images) dB table of one metric; each configuration's planted effect and its true mean
    over these test patients (the planted effect plus its patient terms)."""
    n_img = len(patient)
    difficulty = rng.normal(0, comp.difficulty_sd, n_img)
    pre_levels = sorted({p for _, p, _ in configs})
    pre_pat = {p: rng.normal(0, comp.pretraining_patient_sd, design.patients) for p in pre_levels}
    planted = np.array([effect(lv, p, lam, psi_of(lv, p, lam)) if effect else 0.0 for lv, p, lam in configs])
    per_patient = np.stack([pre_pat[p] * (lam != 0) + rng.normal(0, comp.config_patient_sd, design.patients)
                            for _, p, lam in configs])  # configurations × patients
    cfg = planted[:, None] + per_patient[:, patient] + rng.normal(0, comp.config_image_sd, (len(configs), n_img))
    idx = np.array([i for i, _ in ok])
    nets = _network_offsets(rng, comp, len(ok))
    db = difficulty[None, :] + cfg[idx] + nets[:, None] + rng.normal(0, comp.residual_sd, (len(ok), n_img))
    return db, planted, planted + per_patient[:, patient].mean(axis=1)


def _trial_row(config: tuple[str, str, float], i: int, s: int, failed: bool) -> dict:
    level, pre, lam = config
    return {"run_key": f"k{i:03d}s{s}", "status": "failed" if failed else "finished",
            "configuration": label(level, pre, lam), "feature_level": level, "pretraining": pre, "lam": lam,
            "seed": s, "psi": psi_of(level, pre, lam), "pixel_loss": PIXEL_LOSS,
            "perceptual_loss": 0.0 if lam == 0 else MAGNITUDE.get((level, pre), MAGNITUDE_OTHER) * 1e-2,
            "wall_s": 10.0, "error": "Diverged: non-finite loss" if failed else None}
