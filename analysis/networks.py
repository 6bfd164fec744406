"""The trained network as the unit: per-network means, variance components, contrasts and factor importance.

Model for one metric (y of network n = (configuration c, seed s) on test image i of patient p):

    y = μ_c + image_i + (c × patient)_cp + (c × image)_ci + network_cs + e

Stage 1 reduces every network to its mean over the same test images (images that share a `block` are averaged
first). Stage 2 compares configurations on those per-network means with the seeds as replicates. A contrast
Σ w_c μ_c then carries two errors: the between-network spread (Σ w²/n_c · σ²_w: seed luck, replicated, pooled over
configurations) and the contrast's own deviation on this test set (not replicated by seeds). The second is estimated
from the contrast itself, unit by unit, so that a patient effect shared by several configurations (say, every
configuration of one encoder) is counted as often as it occurs:

- population "patients" (≥ `min_patients` test patients): the contrast computed per patient; its between-patient
  variance (P − 1 df) times Σ_p (n_p / I)² is the test-set error, and the claim generalises over patients;
- population "these_test_patients" (fewer patients): the patients are fixed; the contrast computed per image, its
  within-patient variance (I − P df) over I is the error, and the claim holds for these test patients only.

The image-level residual counted in both terms (Σ w²/n_c · σ²_e / I) is subtracted once, and the degrees of freedom
come from Satterthwaite's formula — the quasi-F approach for crossed random factors (Clark 1973), per contrast.
Closed-form and vectorised, so a 1,925-network grid takes well under a second per metric; a likelihood-based crossed
mixed model (statsmodels' variance components) gives the same answer on small designs and is orders of magnitude
slower. Seeds are treated as independent replicates (not as blocks): conservative when seeds share initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.load import BASELINE, block_key


@dataclass(frozen=True)
class Units:
    """The test-set units a contrast's own test-set error is measured over (module docstring): `dev` is the
    seed-averaged configuration table per unit minus its configuration's mean over the units (patients) or its
    patient's mean (images), `configurations` its columns; a contrast w has test-set variance kappa·|dev·w|²/df."""

    population: str
    dev: np.ndarray  # units × configurations
    configurations: pd.Index
    df: float
    kappa: float

    def test_variance(self, w: np.ndarray) -> np.ndarray:
        """kappa·|dev·w|²/df for every row of the (contrasts × configurations) weight matrix `w` (0 without df)."""
        if self.df <= 0:
            return np.zeros(len(w))
        return self.kappa * ((w @ self.dev.T) ** 2).sum(axis=1) / self.df


@dataclass(frozen=True)
class Variance:
    """Mean squares of one metric's (network × image) table and the variance components derived from them."""

    ms_within: float  # between networks of one configuration (per-network means): σ²_w
    df_within: float
    ms_test: float  # configuration × unit interaction (units: patients or images within patients; see Units)
    df_test: float
    ms_error: float  # network × image residual within configurations: σ²_e
    df_error: float
    n_seeds: float  # harmonic mean of networks per configuration
    n_images: int
    n_patients: int
    n_networks: int
    n_configurations: int
    population: str = "these_test_patients"
    kappa: float = 1.0  # Σ_p (n_p / I)² (patients) or 1 / I (images)
    df_units: float = 0.0  # P − 1 or I − P

    @property
    def test_term(self) -> float:
        """T, the variance of one configuration's deviation on this test set pooled over configurations (≥ 0)."""
        if not np.isfinite(self.ms_test):
            return 0.0
        return max(0.0, self.kappa * self.ms_test - _finite(self.ms_error) / (self.n_seeds * self.n_images))

    @property
    def sd_network(self) -> float:
        return float(np.sqrt(self.ms_within)) if np.isfinite(self.ms_within) else float("nan")

    def combination(self, a, q, df_q) -> tuple[np.ndarray, np.ndarray]:
        """a·σ²_w plus the test-set variance q (estimated with df_q), the image residual in both (a·σ²_e/I)
        subtracted once; with its Satterthwaite df. The test-set part is never below 0."""
        a, q = np.asarray(a, float), np.nan_to_num(np.asarray(q, float))
        var_w = a * self.ms_within
        var_e = a * _finite(self.ms_error) / self.n_images
        use = q - var_e > 0
        var = np.where(use, var_w + q - var_e, var_w)
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = var_w**2 / self.df_within + np.where(
                use, q**2 / np.maximum(df_q, 1e-12) + (var_e**2 / self.df_error if self.df_error > 0 else 0.0), 0.0)
            df = np.where(denom > 0, var**2 / denom, self.df_within)
        return np.maximum(var, 0.0), df

    def as_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "test_term": self.test_term,
                "sd_network": self.sd_network}


def _finite(v: float) -> float:
    return float(v) if np.isfinite(v) else 0.0


@dataclass(frozen=True)
class Networks:
    """Per-network means of one metric (`table`: run_key, configuration, seed, factor columns, y), their variance
    and the test-set units each contrast's own error is measured over."""

    metric: str
    table: pd.DataFrame
    variance: Variance
    units: Units

    @property
    def config_means(self) -> pd.Series:
        return self.table.groupby("configuration")["y"].mean()

    @property
    def config_counts(self) -> pd.Series:
        return self.table.groupby("configuration")["y"].size()

    @property
    def population(self) -> str:
        return self.units.population


def network_means(per_image: pd.DataFrame, metric: str, factors: list[str] | None = None,
                  min_patients: int = 5) -> Networks:
    """Stage 1: each network's mean over the test images every network has; stage-2 variance components. With at
    least `min_patients` test patients (and 2) claims generalise over patients, else they hold for these ones."""
    block = block_key(per_image)
    x = per_image.dropna(subset=[metric])
    y = x.groupby(["run_key", block])[metric].mean().unstack(block)
    y = y.dropna(axis=1)  # the images (blocks) every network was tested on
    meta_cols = ["run_key", "configuration", "seed", *[f for f in (factors or []) if f in x]]
    meta = x[meta_cols].drop_duplicates("run_key").set_index("run_key").loc[y.index]
    patients = _patients_of(x, block, y.columns)
    table = meta.assign(y=y.mean(axis=1)).reset_index()
    variance, units = _variance(y.to_numpy(float), meta["configuration"].to_numpy(), patients, min_patients)
    return Networks(metric, table, variance, units)


def _patients_of(x: pd.DataFrame, block: str, blocks) -> np.ndarray:
    if "patient" not in x:
        return np.zeros(len(blocks), int)
    first = x.drop_duplicates(block).set_index(block)["patient"].astype(str)
    return pd.factorize(first.loc[list(blocks)])[0]


def _variance(y: np.ndarray, configs: np.ndarray, patients: np.ndarray, min_patients: int) -> tuple[Variance, Units]:
    """Method-of-moments mean squares of the (network × image) table `y` grouped by configuration."""
    labels = pd.Index(sorted(set(configs)))  # the order of groupby("configuration")
    codes = labels.get_indexer(configs)
    n_c = np.bincount(codes, minlength=len(labels)).astype(float)
    n_net, n_img = y.shape
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
    units = _units(z, patients, labels, min_patients)
    k = len(labels)
    inter = units.dev - units.dev.mean(axis=1, keepdims=True)  # the units' own main effect removed
    df_test = (k - 1) * units.df
    ms_test = float((inter**2).sum() / df_test) if df_test > 0 else float("nan")
    variance = Variance(ms_within=ss_w / df_w if df_w > 0 else float("nan"), df_within=df_w, ms_test=ms_test,
                        df_test=float(df_test), ms_error=ms_e, df_error=df_e,
                        n_seeds=len(n_c) / float((1 / n_c).sum()), n_images=n_img,
                        n_patients=max(int(patients.max()) + 1 if patients.size else 0, 1), n_networks=n_net,
                        n_configurations=k, population=units.population, kappa=units.kappa, df_units=units.df)
    return variance, units


def _units(z: np.ndarray, patients: np.ndarray, labels: pd.Index, min_patients: int) -> Units:
    """Patients as units (their means, P − 1 df) from `min_patients` (and 2) on, else images within patients."""
    n_img = z.shape[1]
    n_pat = int(patients.max()) + 1 if patients.size else 1
    if n_pat >= max(2, min_patients):
        per_pat = np.bincount(patients, minlength=n_pat).astype(float)
        zp = np.stack([z[:, patients == p].mean(axis=1) for p in range(n_pat)])  # patients × configurations
        return Units("patients", zp - zp.mean(axis=0), labels, float(n_pat - 1), float(((per_pat / n_img) ** 2).sum()))
    zi = z.T.copy()  # images × configurations
    for p in range(n_pat):
        zi[patients == p] -= zi[patients == p].mean(axis=0)
    return Units("these_test_patients", zi, labels, float(n_img - n_pat), 1.0 / n_img)


def weight_matrix(nets: Networks, weights: list[dict[str, float]]) -> np.ndarray:
    """(contrasts × configurations) matrix of the weight dicts, columns in the order of `nets.units`."""
    cols = nets.units.configurations
    w = np.zeros((len(weights), len(cols)))
    for i, ws in enumerate(weights):
        for c, v in ws.items():
            w[i, cols.get_loc(c)] += v
    return w


def contrasts(nets: Networks, weights: list[dict[str, float]], confidence: float = 0.95) -> pd.DataFrame:
    """Estimate, SE, Satterthwaite df, two-sided t p-value and CI of each contrast Σ w_c μ_c (dict configuration → w),
    each with its own test-set error (module docstring)."""
    w = weight_matrix(nets, weights)
    cols = nets.units.configurations
    means = nets.config_means.reindex(cols).to_numpy(float)
    counts = nets.config_counts.reindex(cols).fillna(0).to_numpy(float)
    used = w != 0
    est = (np.where(used, w, 0.0) * np.nan_to_num(means)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(used, w**2 / counts, 0.0).sum(axis=1)
    var, df = nets.variance.combination(a, nets.units.test_variance(w), nets.units.df)
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
        # no spread at all (se = 0): decided by the estimate; no error term (one network each, se NaN): no test
        p = np.where(se > 0, 2 * sps.t.sf(np.abs(t), df), np.where(est == 0, 1.0, 0.0))
        p = np.where(np.isnan(se), np.nan, p)
    q = sps.t.ppf(0.5 + confidence / 2, df)
    return pd.DataFrame({"estimate": est, "se": se, "df": df, "t": t, "pvalue": p, "ci_low": est - q * se,
                         "ci_high": est + q * se, "n_networks": (used * counts).sum(axis=1).astype(int)})


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
    return replace(nets, table=nets.table[nets.table["configuration"] != BASELINE].reset_index(drop=True))
