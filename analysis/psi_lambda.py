"""Paper 1's central question: does the perceptual influence Ψ explain the metric better than λ does?

Within each (feature level × pretraining) cell, logit Ψ = log λ + a constant of the cell (fixed magnitudes), so a
straight line in either explains the same; what differs is where the optimum lies. The model
`metric ~ cell + x + x²` (one quadratic common to all cells, each cell its own level) is fitted with x = logit Ψ and
with x = log λ; if the best weighting sits at the same Ψ across encoders and layers (paper 1) the first explains
more of the within-cell variance. The estimate is R²(Ψ) − R²(log λ) as a share of the within-cell variance (0–1).

Its test is a parametric bootstrap of the fitted null model: `cell + log λ` (the part both models share: within a
cell, logit Ψ and log λ differ by a constant), plus a configuration-level deviation N(0, τ²) and a network offset
N(0, σ²_w), with the observed Ψ and λ of every network kept; p is the share of null draws with |ΔR²| at least the
observed one. Each draw takes its τ² and σ²_w from the scaled inverse χ² of their estimates (their df), so the
uncertainty of a τ² estimated from few configurations widens the null distribution instead of making it liberal. τ² is the larger of the measured test-set term T and the configurations' scatter around the union
model (cell + log λ + log² λ + logit² Ψ) beyond their networks' noise, so configuration effects that neither model
explains count as noise, not as evidence. The 95% CI is the percentile interval of the same bootstrap around the
union model's fit (non-null). It needs ≥ 3 distinct λ in each of ≥ 2 cells; Ψ is each network's measured
last-epoch Ψ and λ its final λ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.networks import Networks, non_baseline

TEST = ("R² of metric ~ cell + x + x² (x = logit Ψ vs log λ); parametric bootstrap of the null model cell + log λ "
        "with configuration deviations and network offsets (2,000 draws)")
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
    r2p, r2l = float(_r2_within(y, lp, cell)), float(_r2_within(y, ll, cell))
    est = r2p - r2l
    null, full, tau2, df_tau = _fits(x, y, cell, lp, ll, nets.variance)
    v = nets.variance
    w = (float(np.nan_to_num(v.ms_within)), float(v.df_within))
    configs = pd.factorize(x["configuration"])[0]
    rng = np.random.default_rng(seed)
    draws = [_draw(fit, configs, (tau2, df_tau), w, n_resamples, rng) for fit in (null, full)]
    stat = [_r2_within(d, lp, cell) - _r2_within(d, ll, cell) for d in draws]
    under_null, around = (s[np.isfinite(s)] for s in stat)
    if not np.isfinite(est) or under_null.size < n_resamples // 2 or around.size < n_resamples // 2:
        return None
    lo, hi = np.quantile(around, [0.025, 0.975])
    p = float((1 + (np.abs(under_null) >= abs(est)).sum()) / (1 + under_null.size))
    if p < alpha and abs(est) >= min_effect:
        kind = "better" if est > 0 else "worse"
    elif -min_effect < lo and hi < min_effect:
        kind = "equivalent"
    else:
        kind = "undecided"
    return {"kind": kind, "subject": "Ψ", "reference": "log λ", "estimate": est, "ci_low": float(lo),
            "ci_high": float(hi), "p_adj": p, "test": TEST, "family": "none (one question per metric)",
            "n_networks": int(len(x)), "min_effect": min_effect, "unit": "share of within-cell variance",
            "r2_psi": r2p, "r2_lam": r2l, "n_cells": int(len(cells)), "tau": float(np.sqrt(tau2))}


def _fits(x: pd.DataFrame, y: np.ndarray, cell: np.ndarray, lp: np.ndarray, ll: np.ndarray,
          variance) -> tuple[np.ndarray, np.ndarray, float]:
    """Fitted values (per network) of the null model cell + log λ and of the union model, and τ², the variance of
    a configuration's deviation (module docstring)."""
    dummies = pd.get_dummies(cell, dtype=float).to_numpy()
    null_x = np.column_stack([dummies, ll])
    full_x = np.column_stack([null_x, ll**2, lp**2])
    fit = [d @ np.linalg.lstsq(d, y, rcond=None)[0] for d in (null_x, full_x)]
    g = pd.DataFrame({"c": x["configuration"].to_numpy(), "r": y - fit[1]}).groupby("c")["r"]
    resid, n_c = g.mean().to_numpy(), g.size().to_numpy(float)
    rank = np.linalg.matrix_rank(full_x)
    df = len(resid) - rank
    lof = (resid**2).sum() / df - np.mean(np.nan_to_num(variance.ms_within) / n_c) if df > 0 else 0.0
    if lof > variance.test_term:
        return fit[0], fit[1], float(lof), float(df)
    return fit[0], fit[1], float(max(variance.test_term, 0.0)), float(variance.df_test)


def _scaled(var: tuple[float, float], n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws of a variance estimated as var[0] with var[1] df, from its scaled inverse χ² (its uncertainty)."""
    est, df = var
    if not (df > 0 and np.isfinite(df)):
        return np.full(n, est)
    return est * df / rng.chisquare(df, n)


def _draw(fit: np.ndarray, configs: np.ndarray, tau2: tuple[float, float], w: tuple[float, float], n: int,
          rng: np.random.Generator) -> np.ndarray:
    """n parametric draws (n × networks): the fit, one N(0, τ²) per configuration, one N(0, σ²_w) per network;
    each draw's τ² and σ²_w drawn from their estimates' uncertainty (`_scaled`), since a plug-in null distribution
    with a τ² estimated from few df is too narrow."""
    sd_tau, sd_w = np.sqrt(_scaled(tau2, n, rng))[:, None], np.sqrt(_scaled(w, n, rng))[:, None]
    dev = rng.standard_normal((n, configs.max() + 1))[:, configs] * sd_tau
    return fit[None, :] + dev + rng.standard_normal((n, fit.size)) * sd_w
