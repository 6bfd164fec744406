"""Paper 1's central question: does the perceptual influence Ψ explain the metric better than λ does?

Within each (feature level × pretraining) cell, logit Ψ = log λ + a constant of the cell (fixed magnitudes), so a
straight line in either explains the same; what differs is where the optimum lies. The model
`metric ~ cell + x + x²` (one quadratic common to all cells, each cell its own level) is fitted with x = logit Ψ and
with x = log λ; if the best weighting sits at the same Ψ across encoders and layers (paper 1) the first explains
more of the within-cell variance. The estimate is R²(Ψ) − R²(log λ) as a share of the within-cell variance (0–1),
with a 95% percentile bootstrap CI that redraws the networks of every configuration (seed luck) and adds a
configuration-level deviation with the measured test-set variance T. It needs ≥ 3 distinct λ in each of ≥ 2 cells;
Ψ is each network's measured last-epoch Ψ and λ its final λ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.networks import Networks, non_baseline

TEST = "R² of metric ~ cell + x + x² (x = logit Ψ vs log λ), bootstrap over networks within configurations (2,000)"
CELL = ("feature_level", "pretraining")


def _frame(nets: Networks, trials: pd.DataFrame) -> pd.DataFrame | None:
    need = {"psi", "lam", *CELL}
    if not need <= set(trials.columns):
        return None
    t = trials.set_index("run_key")
    lam = t["lam_final"].where(t["lam_final"].notna() & (t["lam_final"] > 0), t["lam"]) if "lam_final" in t else t["lam"]
    x = non_baseline(nets).table[["run_key", "configuration", "y"]].copy()
    if x.empty:
        return None
    x["cell"] = t.loc[x["run_key"], list(CELL)].astype(str).agg(" · ".join, axis=1).to_numpy()
    x["psi"] = t.loc[x["run_key"], "psi"].to_numpy(float)
    x["lam"] = lam.loc[x["run_key"]].to_numpy(float)
    x = x[(x["psi"] > 0) & (x["psi"] < 1) & (x["lam"] > 0)].dropna()
    return x if len(x) else None


def _r2_within(y: np.ndarray, x: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Share of the within-cell variance of y (resamples × n) explained by x + x² (common) with cell levels."""
    def within(v):  # centre per cell (the cell levels of the model)
        out = v.copy()
        for c in np.unique(cell):
            out[..., cell == c] -= v[..., cell == c].mean(axis=-1, keepdims=True)
        return out

    z = x - x.mean(axis=-1, keepdims=True)
    d = np.stack([within(z), within(z**2)], axis=-1)  # Frisch–Waugh: the cell dummies partialled out
    yw = within(y)
    coef = np.linalg.solve(np.einsum("...ni,...nj->...ij", d, d) + 1e-12 * np.eye(2), np.einsum("...ni,...n->...i", d, yw)[..., None])
    res = yw - (d @ coef)[..., 0]
    tot = (yw**2).sum(axis=-1)
    return 1 - (res**2).sum(axis=-1) / np.where(tot > 0, tot, np.nan)


def psi_versus_lambda(nets: Networks, trials: pd.DataFrame, min_effect: float = 0.05, alpha: float = 0.05,
                      n_resamples: int = 2000, seed: int = 0) -> dict | None:
    """The Ψ-versus-λ claim (analysis.claims format, without metric and n_images/n_patients), or None when the
    design cannot tell them apart (fewer than 2 cells with ≥ 3 distinct λ each)."""
    x = _frame(nets, trials)
    if x is None:
        return None
    distinct = x.groupby("cell")["lam"].nunique()
    cells = distinct.index[distinct >= 3]
    if len(cells) < 2:
        return None
    x = x[x["cell"].isin(cells)].reset_index(drop=True)
    cell = x["cell"].to_numpy()
    y = x["y"].to_numpy()
    lp, ll = np.log(x["psi"] / (1 - x["psi"])).to_numpy(), np.log(x["lam"]).to_numpy()
    est = float(_r2_within(y, lp, cell) - _r2_within(y, ll, cell))
    idx, dev = _resample(x["configuration"].to_numpy(), nets.variance.test_term, n_resamples, seed)
    boot = _r2_within(y[idx] + dev, lp[idx], cell) - _r2_within(y[idx] + dev, ll[idx], cell)
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(est) or boot.size < n_resamples // 2:
        return None
    lo, hi = np.quantile(boot, [0.025, 0.975])
    p = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))
    if p < alpha and abs(est) >= min_effect:
        kind = "better" if est > 0 else "worse"
    elif -min_effect < lo and hi < min_effect:
        kind = "equivalent"
    else:
        kind = "undecided"
    return {"kind": kind, "subject": "Ψ", "reference": "log λ", "estimate": est, "ci_low": float(lo),
            "ci_high": float(hi), "p_adj": p, "test": TEST, "family": "none (one question per metric)",
            "n_networks": int(len(x)), "min_effect": min_effect, "unit": "share of within-cell variance",
            "r2_psi": float(_r2_within(y, lp, cell)), "r2_lam": float(_r2_within(y, ll, cell)), "n_cells": int(len(cells))}


def _resample(configs: np.ndarray, test_term: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices redrawing each configuration's networks with replacement, and one N(0, T) deviation per configuration
    and resample (the test-set error the networks of a configuration share)."""
    rng = np.random.default_rng(seed)
    idx = np.empty((n, len(configs)), int)
    dev = np.zeros((n, len(configs)))
    for c in np.unique(configs):
        rows = np.where(configs == c)[0]
        idx[:, rows] = rows[rng.integers(0, len(rows), (n, len(rows)))]
        dev[:, rows] = rng.normal(0, np.sqrt(test_term), (n, 1))
    return idx, dev
