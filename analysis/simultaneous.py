"""Simultaneous inference for contrasts chosen after looking at the data: the best configuration against the others,
a factor's recommended (best-mean) level against its other levels, the best level within a level of another factor.

Testing only the comparisons against the selected best with Holm ignores the selection: under the null the smallest
p-value is then a range test over all means, and "the best beats X" is claimed far more often than α. Here every
such family is tested with a single-step max-t over **all** pairs the selection could have made (all pairs of
configurations; all pairs of levels of every factor), so whatever is selected, the claims hold their family-wise
level. The reference distribution is the maximum |t| over the family under the null, simulated from the estimated
covariance of the configuration means (between-network variance over n_c, plus the test-set units' covariance; see
analysis.networks): Σ = diag(σ²_w / n_c) + κ · devᵀdev / df. Each observed t is first turned into the normal
deviate with the same two-sided p-value at its own Satterthwaite df, so contrasts with different df share one
reference. This is the multivariate-normal max-t of Hothorn, Bretz & Westfall (2008, multcomp's "single-step"),
which reduces to Tukey's studentized range for equal variances and independent means; we simulate it (a fixed seed,
so a report is reproducible) because no Python library computes it for an arbitrary covariance. Simultaneous
confidence intervals use the same critical value, so a claim's interval excludes 0 exactly when it is significant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.networks import Networks, contrasts, weight_matrix

DRAWS = 4000  # draws of the reference distribution (fewer for very many pairs: at least MIN_DRAWS)
MIN_DRAWS = 1000
SEED = 20261206
CHUNK = 2**23  # values per block of simulated pair differences


def _factor(nets: Networks, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sqrt of the diagonal part (σ²_w / n_c) and the scaled unit deviations (units × columns) of Σ."""
    counts = nets.config_counts.reindex(nets.units.configurations[cols]).fillna(0).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = np.sqrt(np.where(counts > 0, nets.variance.ms_within / counts, 0.0))
    u = nets.units
    dev = u.dev[:, cols] * np.sqrt(u.kappa / u.df) if u.df > 0 else np.zeros((1, len(cols)))
    return diag, dev


def _draws(diag: np.ndarray, dev: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws (n × columns) of N(0, diag² + devᵀdev)."""
    return rng.standard_normal((n, diag.size)) * diag + rng.standard_normal((n, dev.shape[0])) @ dev


def max_over_pairs(nets: Networks, configurations: list[str], n: int | None = None, seed: int = SEED) -> np.ndarray:
    """Null draws of max over all pairs a, b of the configurations of |Δ̂_ab| / SD(Δ̂_ab)."""
    cols = nets.units.configurations.get_indexer(configurations)
    k = len(cols)
    n = n or int(np.clip(DRAWS * (60 / max(k, 1)) ** 2, MIN_DRAWS, DRAWS))
    diag, dev = _factor(nets, cols)
    if k < 2 or not np.all(np.isfinite(diag)):
        return np.full(n, np.nan)
    cov = dev.T @ dev
    var = diag**2 + np.diag(cov)
    sd = np.sqrt(np.maximum(var[:, None] + var[None, :] - 2 * cov, 0.0))
    with np.errstate(divide="ignore"):
        inv = np.where(sd > 0, 1 / sd, 0.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = _draws(diag, dev, n, rng).astype(np.float32)
    out = np.empty(n)
    step = max(1, CHUNK // (k * k))
    for s in range(0, n, step):
        block = y[s:s + step]
        d = block[:, :, None] - block[:, None, :]  # both orientations: the max is the largest |difference|
        d *= inv
        out[s:s + step] = d.reshape(len(block), -1).max(axis=1)
    return out


def max_over_contrasts(nets: Networks, weights: list[dict[str, float]], n: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """Null draws of max over the contrasts (weight dicts) of |ŵᵀμ| / SD(ŵᵀμ)."""
    w = weight_matrix(nets, weights)
    cols = np.flatnonzero(np.any(w != 0, axis=0))
    w = w[:, cols]
    diag, dev = _factor(nets, cols)
    if not len(weights) or not np.all(np.isfinite(diag)):
        return np.full(n, np.nan)
    sd = np.sqrt(((w * diag) ** 2).sum(axis=1) + ((w @ dev.T) ** 2).sum(axis=1))
    y = _draws(diag, dev, n, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nanmax(np.abs(y @ w.T) / np.where(sd > 0, sd, np.nan), axis=1)


def normal_deviate(t, df) -> np.ndarray:
    """|z| with the same two-sided p-value as |t| at df (inf where se was 0)."""
    t, df = np.abs(np.asarray(t, float)), np.asarray(df, float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(t), np.inf, sps.norm.isf(sps.t.sf(t, df)))


def simultaneous(nets: Networks, weights: list[dict[str, float]], reference: np.ndarray,
                 confidence: float = 0.95) -> pd.DataFrame:
    """`analysis.networks.contrasts` of the weights with `p_adj` (single-step: the share of the reference maxima at
    least as large as each |z|) and simultaneous CIs from the reference's `confidence` quantile; `crit_z` kept."""
    c = contrasts(nets, weights)
    ref = reference[np.isfinite(reference)]
    if not len(c):
        return c.assign(p_adj=[], crit_z=[])
    if not ref.size:
        return c.assign(p_adj=np.nan, crit_z=np.nan, ci_low=np.nan, ci_high=np.nan)
    z = normal_deviate(c["t"], c["df"])
    ref = np.sort(ref)
    beyond = ref.size - np.searchsorted(ref, z, side="left")
    p = np.where(np.isnan(c["pvalue"]), np.nan, np.where(c["se"] > 0, (1 + beyond) / (1 + ref.size), c["pvalue"]))
    crit = float(np.quantile(ref, confidence))
    q = sps.t.isf(sps.norm.sf(crit), c["df"].to_numpy(float))
    est, se = c["estimate"].to_numpy(float), c["se"].to_numpy(float)
    return c.assign(p_adj=np.minimum(p, 1.0), crit_z=crit, ci_low=est - q * se, ci_high=est + q * se)


def describe(kind: str, size: int, draws: int) -> str:
    """What a family's test says in a claim's `test` and in Methods."""
    what = {"pairs": f"all {size} pairs of configurations", "levels": f"all {size} pairs of levels of every factor",
            "within": f"all {size} pairs of levels within each level of the other factor"}[kind]
    return f"single-step max-t over {what} (multivariate normal, {draws:,} draws from the estimated covariance)"
