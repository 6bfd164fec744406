"""Simultaneous inference for contrasts chosen after looking at the data: the best configuration against the others,
a factor's recommended (best-mean) level against its other levels, the best level within a level of another factor.

Testing only the comparisons against the selected best with Holm ignores the selection: under the null the smallest
p-value is then a range test over all means, and "the best beats X" is claimed far more often than α. Here every
such family is tested with a single-step max-t over **all** pairs the selection could have made (all pairs of
configurations; all pairs of levels of every factor), so whatever is selected, the claims hold their family-wise
level. The reference distribution is the maximum statistic over the family under the null, simulated (a fixed
seed, so a report is reproducible) with the configuration means independent, each with its estimated variance
(σ²_w / n_c plus κ times its configuration × unit variance; see analysis.networks). The covariance between
configurations estimated from P − 1 patient df is low-rank noise that made the max-t liberal, and leaving out
positive dependence between configurations is conservative. With more than BOOTSTRAP_DF test-set df each observed t
is turned into the normal deviate with the same two-sided p-value at its own Satterthwaite df and compared with the
maximum of normal draws (the multivariate-normal max-t of Hothorn, Bretz & Westfall 2008, multcomp's "single-step";
Tukey's studentized range for equal variances); with fewer, a parametric bootstrap of max |t| redraws the variance
estimates too, since they are then noisy. We simulate it because no Python library computes a max-t for arbitrary
contrasts with per-contrast Satterthwaite df. Simultaneous confidence intervals use the same critical value, so a
claim's interval excludes 0 exactly when it is significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.networks import Networks, contrasts, weight_matrix

DRAWS = 4000  # draws of the reference distribution (fewer for very many pairs: at least MIN_DRAWS)
MIN_DRAWS = 1000
SEED = 20261206
CHUNK = 2**23  # values per block of simulated pair differences
BOOTSTRAP_DF = 30  # at most this many test-set df: the variance estimates are noisy enough to redraw them


def _variances(nets: Networks, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per configuration (of `cols`): networks, σ²_w / n_c and the test-set variance of its mean: κ times the
    variance of its configuration × unit interaction (the units' common main effect removed)."""
    counts = nets.config_counts.reindex(nets.units.configurations[cols]).fillna(0).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        net = np.where(counts > 0, nets.variance.ms_within / counts, np.nan)
    u = nets.units
    k = u.dev.shape[1]
    if u.df <= 0 or k < 2:
        return counts, net, np.zeros(len(cols))
    inter = u.dev - u.dev.mean(axis=1, keepdims=True)  # the units' own main effect (common to all) removed
    return counts, net, u.kappa * (inter[:, cols] ** 2).sum(axis=0) / u.df * k / (k - 1)


@dataclass(frozen=True)
class Reference:
    """Null draws of a family's maximum statistic: of |t| itself (`scale` "t": a parametric bootstrap of the whole
    test, variance estimates redrawn) or of the normal deviate of |t| ("z": the variance estimates taken as exact)."""

    maxima: np.ndarray
    scale: str

    @property
    def method(self) -> str:
        return ("parametric bootstrap of max |t| with the variance estimates redrawn" if self.scale == "t" else
                "multivariate normal")


def _n_draws(k: int) -> int:
    return int(np.clip(DRAWS * (60 / max(k, 1)) ** 2, MIN_DRAWS, DRAWS))


def max_over_pairs(nets: Networks, configurations: list[str], n: int | None = None, seed: int = SEED) -> Reference:
    """Null draws of max over all pairs a, b of the configurations of |Δ̂_ab| / SE(Δ̂_ab)."""
    cols = nets.units.configurations.get_indexer(configurations)
    k = len(cols)
    n = n or _n_draws(k)
    _, net, unit = _variances(nets, cols)
    if k < 2 or not np.all(np.isfinite(net)):
        return Reference(np.full(n, np.nan), "z")
    if 0 < nets.units.df <= BOOTSTRAP_DF:
        return Reference(_bootstrap(nets, cols, None, n, seed), "t")
    var = net + unit
    sd = np.sqrt(var[:, None] + var[None, :])
    with np.errstate(divide="ignore"):
        inv = np.where(sd > 0, 1 / sd, 0.0).astype(np.float32)
    y = (np.random.default_rng(seed).standard_normal((n, k)) * np.sqrt(var)).astype(np.float32)
    out = np.empty(n)
    step = max(1, CHUNK // (k * k))
    for s in range(0, n, step):
        block = y[s:s + step]
        d = block[:, :, None] - block[:, None, :]  # both orientations: the max is the largest |difference|
        d *= inv
        out[s:s + step] = d.reshape(len(block), -1).max(axis=1)
    return Reference(out, "z")


def max_over_contrasts(nets: Networks, weights: list[dict[str, float]], n: int = DRAWS, seed: int = SEED) -> Reference:
    """Null draws of max over the contrasts (weight dicts) of |ŵᵀμ| / SE(ŵᵀμ)."""
    w = weight_matrix(nets, weights)
    cols = np.flatnonzero(np.any(w != 0, axis=0))
    w = w[:, cols]
    _, net, unit = _variances(nets, cols)
    if not len(weights) or not np.all(np.isfinite(net)):
        return Reference(np.full(n, np.nan), "z")
    if 0 < nets.units.df <= BOOTSTRAP_DF:
        return Reference(_bootstrap(nets, cols, w, n, seed), "t")
    var = net + unit
    sd = np.sqrt((w**2 * var).sum(axis=1))
    y = np.random.default_rng(seed).standard_normal((n, len(cols))) * np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        return Reference(np.nanmax(np.abs(y @ w.T) / np.where(sd > 0, sd, np.nan), axis=1), "z")


def _bootstrap(nets: Networks, cols: np.ndarray, w: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """max_j |t_j| over the contrasts (rows of w over `cols`; None: all pairs of `cols`) of n studies drawn from
    the fitted null model and tested as the data were: network offsets N(0, σ²_w − σ²_e/I) per configuration mean;
    df + 1 test-set units, each configuration's effects independent with its estimated variance, re-centred, and
    each contrast's unit variance re-estimated with the same df; σ²_w re-estimated from a scaled χ² draw; σ²_e
    taken as known (it has many df)."""
    v, u = nets.variance, nets.units
    rng = np.random.default_rng(seed)
    counts, _, unit = _variances(nets, cols)
    ms_e = float(np.nan_to_num(v.ms_error)) / v.n_images
    net_sd = np.sqrt(np.maximum(v.ms_within - ms_e, 0.0) / counts)
    k, n_units = len(cols), int(round(u.df)) + 1
    a = 1 / counts[:, None] + 1 / counts[None, :] if w is None else (w**2 / counts).sum(axis=1)
    unit_sd = np.sqrt(unit / u.kappa)  # one unit's effect on a configuration
    out = np.empty(n)
    width = k * k if w is None else n_units * w.shape[0]
    step = max(1, CHUNK // max(1, width + n_units * k))
    for s in range(0, n, step):
        b = min(step, n - s)
        units = rng.standard_normal((b, n_units, k)) * unit_sd
        mean = units.mean(axis=1) * np.sqrt(u.kappa * n_units) + rng.standard_normal((b, k)) * net_sd
        centred = units - units.mean(axis=1, keepdims=True)
        ms_w = v.ms_within * rng.chisquare(v.df_within, b) / v.df_within
        if w is None:
            g = np.einsum("bpk,bpl->bkl", centred, centred)
            d = np.einsum("bkk->bk", g)
            q = u.kappa * (d[:, :, None] + d[:, None, :] - 2 * g) / u.df
            var = a * ms_w[:, None, None] + np.maximum(q - a * ms_e, 0.0)
            stat = np.abs(mean[:, :, None] - mean[:, None, :])
        else:
            q = u.kappa * (np.einsum("bpk,jk->bpj", centred, w) ** 2).sum(axis=1) / u.df
            var = a * ms_w[:, None] + np.maximum(q - a * ms_e, 0.0)
            stat = np.abs(mean @ w.T)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[s:s + b] = np.nanmax((stat / np.sqrt(var)).reshape(b, -1), axis=1)
    return out


def normal_deviate(t, df) -> np.ndarray:
    """|z| with the same two-sided p-value as |t| at df (inf where se was 0)."""
    t, df = np.abs(np.asarray(t, float)), np.asarray(df, float)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(t), np.inf, sps.norm.isf(sps.t.sf(t, df)))


def simultaneous(nets: Networks, weights: list[dict[str, float]], reference: Reference,
                 confidence: float = 0.95) -> pd.DataFrame:
    """`analysis.networks.contrasts` of the weights with `p_adj` (single-step: the share of the reference maxima at
    least as large as each statistic) and simultaneous CIs from the reference's `confidence` quantile (`crit`)."""
    c = contrasts(nets, weights)
    ref = reference.maxima[np.isfinite(reference.maxima)]
    if not len(c):
        return c.assign(p_adj=[], crit=[])
    if not ref.size:
        return c.assign(p_adj=np.nan, crit=np.nan, ci_low=np.nan, ci_high=np.nan)
    stat = np.abs(c["t"].to_numpy(float)) if reference.scale == "t" else normal_deviate(c["t"], c["df"])
    ref = np.sort(ref)
    beyond = ref.size - np.searchsorted(ref, stat, side="left")
    p = np.where(np.isnan(c["pvalue"]), np.nan, np.where(c["se"] > 0, (1 + beyond) / (1 + ref.size), c["pvalue"]))
    crit = float(np.quantile(ref, confidence))
    q = crit if reference.scale == "t" else sps.t.isf(sps.norm.sf(crit), c["df"].to_numpy(float))
    est, se = c["estimate"].to_numpy(float), c["se"].to_numpy(float)
    return c.assign(p_adj=np.minimum(p, 1.0), crit=crit, ci_low=est - q * se, ci_high=est + q * se)


def describe(kind: str, size: int, reference: Reference) -> str:
    """What a family's test says in a claim's `test` and in Methods."""
    what = {"pairs": f"all {size} pairs of configurations", "levels": f"all {size} pairs of levels of every factor",
            "within": f"all {size} pairs of levels within each level of the other factor"}[kind]
    return f"single-step max-t over {what} ({reference.method}, {reference.maxima.size:,} draws)"
