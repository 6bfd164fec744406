"""Paper 1's central question: does the perceptual influence Ψ explain the metric better than λ does?

Within each (feature level × pretraining) cell, logit Ψ = log λ + a constant of the cell (fixed magnitudes), so a
straight line in either explains the same; what differs is where the optimum lies. The model
`metric ~ cell + x + x²` (one quadratic common to all cells, each cell its own level) is fitted with x = logit Ψ and
with x = log λ; if the best weighting sits at the same Ψ across encoders and layers (paper 1) the first explains
more of the within-cell variance. The estimate is R²(Ψ) − R²(log λ) as a share of the within-cell variance (0–1).

Its test is a parametric bootstrap of the fitted null model: `cell + log λ` (the part both models share: within a
cell, logit Ψ and log λ differ by a constant), plus a configuration-level deviation N(0, τ²) and a network offset
N(0, σ²_w), with the observed Ψ and λ of every network kept; p is the share of null draws with |ΔR²| at least the
observed one. τ² is the larger of the measured test-set term T and the configurations' scatter around the union
model (cell + log λ + log² λ + logit² Ψ) beyond their networks' noise, so configuration effects that neither model
explains count as noise, not as evidence. Each draw takes σ²_w, and the scatter's mean square from which τ² comes,
from the scaled inverse χ² of their estimates (their df): estimated from a few configurations, τ² is often 0, and
a plug-in 0 made the null distribution too narrow (5.8% false claims at α = 5%, Benchmark 7). The 95% CI is the
percentile interval of the same bootstrap around the union model's fit (non-null). It needs ≥ 3 distinct λ in each
of ≥ 2 cells; Ψ is each network's measured last-epoch Ψ and λ its final λ.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    null, full, tau = _fits(x, y, cell, lp, ll, nets.variance)
    v = nets.variance
    w = (float(np.nan_to_num(v.ms_within)), float(v.df_within))
    configs = pd.factorize(x["configuration"])[0]
    rng = np.random.default_rng(seed)
    draws = [_draw(fit, configs, tau, w, n_resamples, rng) for fit in (null, full)]
    tau2 = tau.point
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


@dataclass(frozen=True)
class Deviation:
    """The configurations' deviation from the models: its mean square around the union model (`ms`, `df` df), the
    part of it their networks' noise explains (`noise`), and the floor the measured test-set term sets (`floor`)."""

    ms: float
    df: float
    noise: float
    floor: float

    @property
    def point(self) -> float:
        """τ²: the larger of the floor and the mean square beyond the networks' noise."""
        return float(max(self.floor, self.ms - self.noise if self.df > 0 else 0.0, 0.0))

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n values of τ² with the uncertainty of a mean square on `df` df (scaled inverse χ² of `ms`, the noise
        subtracted, the floor kept): a point estimate of 0 from few configurations must not make the null narrow."""
        if not (self.df > 0 and np.isfinite(self.ms)):
            return np.full(n, self.point)
        return np.maximum(_scaled((self.ms, self.df), n, rng) - self.noise, max(self.floor, 0.0))


def _fits(x: pd.DataFrame, y: np.ndarray, cell: np.ndarray, lp: np.ndarray, ll: np.ndarray,
          variance) -> tuple[np.ndarray, np.ndarray, Deviation]:
    """Fitted values (per network) of the null model cell + log λ and of the union model, and the configurations'
    deviation (module docstring)."""
    dummies = pd.get_dummies(cell, dtype=float).to_numpy()
    null_x = np.column_stack([dummies, ll])
    full_x = np.column_stack([null_x, ll**2, lp**2])
    fit = [d @ np.linalg.lstsq(d, y, rcond=None)[0] for d in (null_x, full_x)]
    g = pd.DataFrame({"c": x["configuration"].to_numpy(), "r": y - fit[1]}).groupby("c")["r"]
    resid, n_c = g.mean().to_numpy(), g.size().to_numpy(float)
    df = len(resid) - np.linalg.matrix_rank(full_x)
    ms = float((resid**2).sum() / df) if df > 0 else float("nan")
    noise = float(np.mean(np.nan_to_num(variance.ms_within) / n_c))
    return fit[0], fit[1], Deviation(ms, float(df), noise, float(variance.test_term))


def _scaled(var: tuple[float, float], n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws of a variance estimated as var[0] with var[1] df, from its scaled inverse χ² (its uncertainty)."""
    est, df = var
    if not (df > 0 and np.isfinite(df)):
        return np.full(n, est)
    return est * df / rng.chisquare(df, n)


def _draw(fit: np.ndarray, configs: np.ndarray, tau: Deviation, w: tuple[float, float], n: int,
          rng: np.random.Generator) -> np.ndarray:
    """n parametric draws (n × networks): the fit, one N(0, τ²) per configuration, one N(0, σ²_w) per network;
    each draw's τ² and σ²_w drawn from their estimates' uncertainty, since a plug-in null distribution with a τ²
    estimated from few configurations is too narrow."""
    sd_tau, sd_w = np.sqrt(tau.draws(n, rng))[:, None], np.sqrt(_scaled(w, n, rng))[:, None]
    dev = rng.standard_normal((n, configs.max() + 1))[:, configs] * sd_tau
    return fit[None, :] + dev + rng.standard_normal((n, fit.size)) * sd_w
