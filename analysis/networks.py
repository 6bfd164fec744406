"""The trained network as the unit: per-network means, variance components, contrasts and factor importance.

Model for one metric (y of network n = (configuration c, seed s) on test image i of patient p):

    y = μ_c + image_i + (c × patient)_cp + (c × image)_ci + network_cs + e

Stage 1 reduces every network to its mean over the same test images (images that share a `block` are averaged
first). Stage 2 compares configurations on those per-network means with the seeds as replicates. A configuration's
mean then carries two errors: the between-network spread (σ²_w / n_seeds: seed luck, replicated) and the
configuration's deviation on this particular test set (T = σ²_cp / n_patients + σ²_ci / n_images: not replicated by
seeds, shared by all of a configuration's networks). Both are estimated by the method of moments from the mean
squares of the (network × image) table — the quasi-F approach for crossed random factors (Clark 1973) — and a
contrast Σ w_c μ_c is tested with a t statistic whose degrees of freedom come from Satterthwaite's formula.
Closed-form and vectorised, so a 1,925-network grid takes well under a second per metric; a likelihood-based crossed
mixed model (statsmodels' variance components) gives the same answer on small designs and is orders of magnitude
slower. Seeds are treated as independent replicates (not as blocks): conservative when seeds share initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.load import BASELINE, block_key


@dataclass(frozen=True)
class Variance:
    """Mean squares of one metric's (network × image) table and the variance components derived from them."""

    ms_within: float  # between networks of one configuration (per-network means): σ²_w
    df_within: float
    ms_test: float  # configuration × patient (or × image when < 2 patients) interaction of the seed-averaged table
    df_test: float
    ms_error: float  # network × image residual within configurations: σ²_e
    df_error: float
    n_seeds: float  # harmonic mean of networks per configuration
    n_images: int
    n_patients: int
    n_networks: int
    n_configurations: int

    @property
    def test_term(self) -> float:
        """T = σ²_cp / P + σ²_ci / I, the variance of a configuration's deviation on this test set (≥ 0)."""
        return max(0.0, self.ms_test - self.ms_error / self.n_seeds) / self.n_images

    @property
    def sd_network(self) -> float:
        return float(np.sqrt(self.ms_within)) if np.isfinite(self.ms_within) else float("nan")

    def combination(self, a, b) -> tuple[np.ndarray, np.ndarray]:
        """Estimate of a·σ²_w + b·T and its Satterthwaite df (b·T expanded into its mean squares)."""
        a, b = np.asarray(a, float), np.asarray(b, float)
        var_w = a * self.ms_within
        if self.test_term > 0:
            ct, ce = b / self.n_images, b / (self.n_images * self.n_seeds)
            var = var_w + ct * self.ms_test - ce * self.ms_error
            denom = var_w**2 / self.df_within + (ct * self.ms_test) ** 2 / self.df_test + (ce * self.ms_error) ** 2 / self.df_error
        else:
            var, denom = var_w, var_w**2 / self.df_within
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(denom > 0, var**2 / denom, self.df_within)
        return np.maximum(var, 0.0), df

    def se_df(self, a, b) -> tuple[np.ndarray, np.ndarray]:
        """Standard error and df of contrasts with Var = a·σ²_w + b·T (a = Σ w²/n_c, b = Σ w²)."""
        var, df = self.combination(a, b)
        return np.sqrt(var), df

    def as_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "test_term": self.test_term,
                "sd_network": self.sd_network}


@dataclass(frozen=True)
class Networks:
    """Per-network means of one metric (`table`: run_key, configuration, seed, factor columns, y) and their variance."""

    metric: str
    table: pd.DataFrame
    variance: Variance

    @property
    def config_means(self) -> pd.Series:
        return self.table.groupby("configuration")["y"].mean()

    @property
    def config_counts(self) -> pd.Series:
        return self.table.groupby("configuration")["y"].size()


def network_means(per_image: pd.DataFrame, metric: str, factors: list[str] | None = None) -> Networks:
    """Stage 1: each network's mean over the test images every network has; stage-2 variance components."""
    block = block_key(per_image)
    x = per_image.dropna(subset=[metric])
    y = x.groupby(["run_key", block])[metric].mean().unstack(block)
    y = y.dropna(axis=1)  # the images (blocks) every network was tested on
    meta_cols = ["run_key", "configuration", "seed", *[f for f in (factors or []) if f in x]]
    meta = x[meta_cols].drop_duplicates("run_key").set_index("run_key").loc[y.index]
    patients = _patients_of(x, block, y.columns)
    table = meta.assign(y=y.mean(axis=1)).reset_index()
    return Networks(metric, table, _variance(y.to_numpy(float), meta["configuration"].to_numpy(), patients))


def _patients_of(x: pd.DataFrame, block: str, blocks) -> np.ndarray:
    if "patient" not in x:
        return np.zeros(len(blocks), int)
    first = x.drop_duplicates(block).set_index(block)["patient"].astype(str)
    return pd.factorize(first.loc[list(blocks)])[0]


def _variance(y: np.ndarray, configs: np.ndarray, patients: np.ndarray) -> Variance:
    """Method-of-moments mean squares of the (network × image) table `y` grouped by configuration."""
    codes, labels = pd.factorize(configs)
    n_c = np.bincount(codes, minlength=len(labels)).astype(float)
    n_net, n_img = y.shape
    n_pat = int(patients.max()) + 1 if patients.size else 0
    m = y.mean(axis=1)  # per-network means
    z = np.zeros((len(labels), n_img))
    np.add.at(z, codes, y)
    z /= n_c[:, None]  # seed-averaged configuration × image table
    zm = z.mean(axis=1)
    df_w = float((n_c - 1).sum())
    ss_w = float(((m - zm[codes]) ** 2).sum())
    resid = y - m[:, None] - z[codes] + zm[codes][:, None]
    df_e = df_w * (n_img - 1)
    ms_e = float((resid**2).sum() / df_e) if df_e > 0 else float("nan")
    n_s = len(n_c) / float((1 / n_c).sum())
    k = len(labels)
    inter = z - zm[:, None] - z.mean(axis=0)[None, :] + z.mean()
    df_ci = (k - 1) * (n_img - 1)
    ms_ci = float((inter**2).sum() / df_ci) if df_ci > 0 else float("nan")
    ms_test, df_test = ms_ci, float(df_ci)
    if n_pat >= 2 and k >= 2:
        per_pat = np.bincount(patients, minlength=n_pat).astype(float)
        zp = np.stack([z[:, patients == p].mean(axis=1) for p in range(n_pat)], axis=1)
        ip = zp - zp.mean(axis=1, keepdims=True) - zp.mean(axis=0, keepdims=True) + zp.mean()
        df_cp = (k - 1) * (n_pat - 1)
        ms_cp = float(((ip**2) * per_pat[None, :]).sum() / df_cp)
        if ms_cp > ms_ci:  # patients add variance beyond that of single images: generalise over patients
            ms_test, df_test = ms_cp, float(df_cp)
    return Variance(ms_within=ss_w / df_w if df_w > 0 else float("nan"), df_within=df_w, ms_test=ms_test,
                    df_test=df_test, ms_error=ms_e, df_error=df_e, n_seeds=n_s, n_images=n_img,
                    n_patients=max(n_pat, 1), n_networks=n_net, n_configurations=k)


def contrasts(nets: Networks, weights: list[dict[str, float]], confidence: float = 0.95) -> pd.DataFrame:
    """Estimate, SE, Satterthwaite df, two-sided t p-value and CI of each contrast Σ w_c μ_c (dict configuration → w)."""
    means, counts = nets.config_means, nets.config_counts
    est = np.array([sum(w * means[c] for c, w in ws.items()) for ws in weights])
    a = np.array([sum(w * w / counts[c] for c, w in ws.items()) for ws in weights])
    b = np.array([sum(w * w for w in ws.values()) for ws in weights])
    se, df = nets.variance.se_df(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
        # no spread at all (se = 0): decided by the estimate; no error term (one network each, se NaN): no test
        p = np.where(se > 0, 2 * sps.t.sf(np.abs(t), df), np.where(est == 0, 1.0, 0.0))
        p = np.where(np.isnan(se), np.nan, p)
    q = sps.t.ppf(0.5 + confidence / 2, df)
    return pd.DataFrame({"estimate": est, "se": se, "df": df, "t": t, "pvalue": p, "ci_low": est - q * se,
                         "ci_high": est + q * se, "n_networks": [int(sum(counts[c] for c in ws)) for ws in weights]})


def tost(estimate, se, df, margin: float) -> np.ndarray:
    """Two one-sided tests of |Δ| < margin (equivalence, Schuirmann): the larger of the two one-sided p-values."""
    est, se, df = (np.asarray(v, float) for v in (estimate, se, df))
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = sps.t.sf((est + margin) / se, df)
        upper = sps.t.cdf((est - margin) / se, df)
    p = np.where(se > 0, np.maximum(lower, upper), np.where(np.abs(est) < margin, 0.0, 1.0))
    return np.where(np.isnan(se), np.nan, p)


def seeds_needed(variance: Variance, effect: float, power: float = 0.8, alpha: float = 0.05, max_seeds: int = 100) -> float:
    """Seeds per configuration for a two-configuration contrast of size `effect` to reach `power` (two-sided t,
    noncentral t power), from the measured between-network variance and test-set term; inf when the test-set term
    alone stops it (more test images or patients are needed, not seeds)."""
    if not (np.isfinite(variance.ms_within) and effect):
        return float("nan")
    for n in range(2, max_seeds + 1):
        var = 2 * variance.ms_within / n + 2 * variance.test_term
        df = variance.n_configurations * (n - 1)
        ncp = abs(effect) / np.sqrt(var)
        crit = sps.t.ppf(1 - alpha / 2, df)
        if sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp) >= power:
            return float(n)
    return float("inf")


def non_baseline(nets: Networks) -> Networks:
    """The same networks without the pixel-only baseline (which has no level of the design factors)."""
    return Networks(nets.metric, nets.table[nets.table["configuration"] != BASELINE].reset_index(drop=True),
                    nets.variance)
