"""Tests over per-image score matrices (index = block/test image, columns = configuration).

Small functions over tidy tables; scipy, statsmodels and scikit-posthocs do the tests, this module makes the
choices: Friedman with Kendall's W (and the Iman–Davenport F) for the omnibus question, pairwise two-sided Wilcoxon
signed-rank tests with Holm correction and the matched-pairs rank-biserial correlation as effect size, the median
paired difference with a bootstrap confidence interval, Nemenyi/Conover post-hoc tests, and a mixed model as a
sensitivity check.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    pvalue: float
    kendall_w: float
    n_blocks: int
    k: int
    iman_davenport_f: float = float("nan")
    iman_davenport_pvalue: float = float("nan")

    def line(self) -> str:
        return (f"Friedman χ²({self.k - 1}) = {self.statistic:.2f}, {p_clause(self.pvalue)}, "
                f"Kendall's W = {self.kendall_w:.3f} (n = {self.n_blocks} images, k = {self.k} configurations)")


def p_clause(p: float, name: str = "p") -> str:
    """'p = 0.012' or 'p < 0.001' for prose."""
    text = format_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 1e-3 else f"{p:.3f}"


def friedman(scores: pd.DataFrame) -> FriedmanResult:
    """Friedman test over configurations (columns) with blocks (rows); Kendall's W = χ² / (n (k − 1))."""
    x = scores.dropna()
    n, k = x.shape
    if k < 3:
        raise ValueError(f"Friedman needs at least 3 configurations, got {k}")
    if n < 2:
        raise ValueError(f"Friedman needs at least 2 complete blocks, got {n}")
    res = sps.friedmanchisquare(*[x[c].to_numpy() for c in x.columns])
    stat = float(res.statistic)
    w = stat / (n * (k - 1)) if np.isfinite(stat) else float("nan")
    # Iman & Davenport (1980): F = (n − 1) χ² / (n (k − 1) − χ²) with (k − 1, (k − 1)(n − 1)) degrees of freedom
    denom = n * (k - 1) - stat
    f = (n - 1) * stat / denom if np.isfinite(stat) and denom > 0 else float("inf") if np.isfinite(stat) else float("nan")
    f_p = float(sps.f.sf(f, k - 1, (k - 1) * (n - 1))) if np.isfinite(f) else (0.0 if f == float("inf") else float("nan"))
    return FriedmanResult(stat, float(res.pvalue), w, n, k, float(f), f_p)


def rank_biserial(a, b) -> float:
    """Matched-pairs rank-biserial correlation of a − b (zero differences dropped): (R+ − R−) / (R+ + R−) ∈ [−1, 1]."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    r = sps.rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


def median_ci(d, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap (BCa, percentile where BCa is degenerate) confidence interval of the median of paired differences."""
    d = np.asarray(d, float)
    if d.size < 2 or np.all(d == d[0]):
        return float(np.median(d)) if d.size else float("nan"), float(np.median(d)) if d.size else float("nan")
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((d,), np.median, confidence_level=confidence, n_resamples=n_resamples, method="BCa",
                            rng=rng)
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):
            res = sps.bootstrap((d,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                                method="percentile", rng=np.random.default_rng(seed))
            lo, hi = res.confidence_interval
    return float(lo), float(hi)


def wilcoxon_pair(a, b) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank (zero differences discarded); (nan, 1) when every difference is zero."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if np.all(d == 0):
        return float("nan"), 1.0
    res = sps.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def adjust(pvalues, correction: str = "holm") -> np.ndarray:
    """Family-wise (Holm) or false-discovery (Benjamini–Hochberg, "fdr_bh") adjustment; "none" returns them as is."""
    p = np.asarray(pvalues, float)
    if p.size == 0 or correction == "none":
        return p
    return multipletests(p, method=correction)[1]


def paired_tests(d: np.ndarray, ci: bool = True) -> dict[str, np.ndarray]:
    """Column-wise tests of paired differences `d` (rows = blocks, columns = comparisons), vectorised: two-sided
    Wilcoxon signed-rank of each column against 0 (zeros discarded), the rank-biserial r, the median and its 95%
    bootstrap CI (BCa; percentile where BCa is degenerate). Rows with a NaN in a column are left out of that column.
    Equal to calling `wilcoxon_pair`, `rank_biserial` and `median_ci` per column, at a fraction of the cost."""
    d = np.asarray(d, float)
    if d.ndim == 1:
        d = d[:, None]
    m = d.shape[1]
    out = {k: np.full(m, np.nan) for k in ("statistic", "pvalue", "effect_size", "median", "ci_low", "ci_high", "n")}
    complete = ~np.isnan(d).any(axis=0)
    groups = [np.where(complete)[0]] + [np.array([j]) for j in np.where(~complete)[0]]
    for cols in groups:
        if cols.size == 0:
            continue
        x = d[:, cols]
        x = x[~np.isnan(x).any(axis=1)]
        out["n"][cols] = x.shape[0]
        if x.shape[0] == 0:
            continue
        out["median"][cols] = np.median(x, axis=0)
        zero = np.all(x == 0, axis=0)
        out["statistic"][cols[zero]], out["pvalue"][cols[zero]], out["effect_size"][cols[zero]] = np.nan, 1.0, 0.0
        live = cols[~zero]
        if live.size:
            y = x[:, ~zero]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                res = sps.wilcoxon(y, axis=0, zero_method="wilcox", alternative="two-sided")
            out["statistic"][live], out["pvalue"][live] = res.statistic, res.pvalue
            a = np.abs(y)
            a[y == 0] = np.nan
            r = sps.rankdata(a, axis=0, nan_policy="omit")
            out["effect_size"][live] = (np.nansum(np.where(y > 0, r, 0), axis=0)
                                        - np.nansum(np.where(y < 0, r, 0), axis=0)) / np.nansum(r, axis=0)
        if ci:
            out["ci_low"][cols], out["ci_high"][cols] = _median_cis(x)
    return out


def _median_cis(x: np.ndarray, n_resamples: int = 2000, seed: int = 0, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """`median_ci` for every column of x at once (the same resamples as per-column calls with the same seed)."""
    lo, hi = np.full(x.shape[1], np.nan), np.full(x.shape[1], np.nan)
    if x.shape[0] < 2:
        lo[:] = hi[:] = np.median(x, axis=0) if x.shape[0] else np.nan
        return lo, hi
    flat = np.all(x == x[0], axis=0)
    lo[flat] = hi[flat] = x[0, flat]
    idx = np.where(~flat)[0]
    for start in range(0, idx.size, chunk):
        cols = idx[start:start + chunk]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sps.bootstrap((x[:, cols].T,), np.median, axis=-1, vectorized=True, method="BCa",
                                n_resamples=n_resamples, rng=np.random.default_rng(seed))
            a, b = (np.atleast_1d(v) for v in res.confidence_interval)
            bad = ~(np.isfinite(a) & np.isfinite(b))
            if bad.any():
                res = sps.bootstrap((x[:, cols[bad]].T,), np.median, axis=-1, vectorized=True, method="percentile",
                                    n_resamples=n_resamples, rng=np.random.default_rng(seed))
                a[bad], b[bad] = (np.atleast_1d(v) for v in res.confidence_interval)
        lo[cols], hi[cols] = a, b
    return lo, hi


def pairwise_wilcoxon(scores: pd.DataFrame, correction: str = "holm", ci: bool = True,
                      pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test for every pair of configurations (or the given `pairs`), p-values
    adjusted for the family.

    Columns: a, b, n, median_diff (a − b), ci_low, ci_high (95% bootstrap CI of the median difference), statistic,
    pvalue, pvalue_adj, effect_size (rank-biserial, > 0 when a > b).
    `correction`: "holm" (default), "fdr_bh" (Benjamini–Hochberg) or "none".
    """
    x = scores.dropna()
    pairs = list(pairs) if pairs is not None else list(combinations(x.columns, 2))
    cols = ["a", "b", "statistic", "pvalue", "pvalue_adj", "effect_size", "n", "median_diff", "ci_low", "ci_high"]
    if not pairs:
        return pd.DataFrame(columns=cols)
    ia = [x.columns.get_loc(a) for a, _ in pairs]
    ib = [x.columns.get_loc(b) for _, b in pairs]
    v = x.to_numpy(float)
    t = paired_tests(v[:, ia] - v[:, ib], ci=ci)
    out = pd.DataFrame({"a": [a for a, _ in pairs], "b": [b for _, b in pairs], "statistic": t["statistic"],
                        "pvalue": t["pvalue"], "effect_size": t["effect_size"], "n": t["n"].astype(int),
                        "median_diff": t["median"], "ci_low": t["ci_low"], "ci_high": t["ci_high"]})
    out["pvalue_adj"] = adjust(out["pvalue"].to_numpy(), correction)
    return out[cols]


def pvalue_matrix(pairwise: pd.DataFrame, column: str = "pvalue_adj") -> pd.DataFrame:
    """Square symmetric matrix of `column` from a pairwise table (diagonal 1), e.g. for a CD diagram."""
    names = list(dict.fromkeys([*pairwise["a"], *pairwise["b"]]))
    m = pd.DataFrame(1.0, index=names, columns=names)
    for row in pairwise.itertuples(index=False):
        m.loc[row.a, row.b] = m.loc[row.b, row.a] = getattr(row, column)
    return m


def nemenyi(scores: pd.DataFrame) -> pd.DataFrame:
    """Nemenyi post-hoc test after Friedman (scikit-posthocs); square p-value matrix."""
    import scikit_posthocs as sp

    x = scores.dropna()
    m = sp.posthoc_nemenyi_friedman(x.to_numpy())
    m.index = m.columns = list(x.columns)
    return m


def conover(scores: pd.DataFrame, correction: str = "holm") -> pd.DataFrame:
    """Conover post-hoc test after Friedman (scikit-posthocs), p-values adjusted by `correction`."""
    import scikit_posthocs as sp

    x = scores.dropna()
    m = sp.posthoc_conover_friedman(x.to_numpy(), p_adjust=None if correction == "none" else correction)
    m.index = m.columns = list(x.columns)
    return m


def mixed_model(long: pd.DataFrame, value: str, group: str = "block", config: str = "configuration",
                reference: str | None = None) -> dict:
    """Sensitivity check: `value ~ C(config)` with a random intercept per block (statsmodels mixedlm, ML fit).

    Uses every (block, seed) row rather than seed means. Returns the likelihood-ratio test of the configuration
    effect against the intercept-only model and each configuration's coefficient against `reference`.
    """
    import statsmodels.formula.api as smf

    d = long[[value, group, config]].dropna().rename(columns={value: "y", group: "g", config: "c"})
    levels = sorted(d["c"].unique())
    ref = reference if reference in levels else levels[0]
    d["c"] = pd.Categorical(d["c"], categories=[ref] + [v for v in levels if v != ref])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            full = smf.mixedlm("y ~ c", d, groups=d["g"]).fit(reml=False)
            null = smf.mixedlm("y ~ 1", d, groups=d["g"]).fit(reml=False)
        except Exception as err:  # noqa: BLE001 - a singular fit is a result to report, not a crash
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    lr = 2 * (full.llf - null.llf)
    df = len(levels) - 1
    ci = full.conf_int()
    coefs = [{"configuration": name[len("c[T."):-1], "coef": float(full.params[name]), "ci_low": float(ci.loc[name, 0]),
              "ci_high": float(ci.loc[name, 1]), "pvalue": float(full.pvalues[name])}
             for name in full.params.index if name.startswith("c[T.")]
    return {"ok": True, "reference": ref, "lr": float(lr), "df": df, "pvalue": float(sps.chi2.sf(lr, df)),
            "converged": bool(full.converged), "n_obs": int(len(d)), "n_groups": int(d["g"].nunique()),
            "coefficients": pd.DataFrame(coefs)}


def power_n(differences, effect: float | None = None, power: float = 0.8, alpha: float = 0.05) -> float:
    """Test images needed to detect a paired effect with a two-sided Wilcoxon signed-rank test.

    From the observed paired differences: Cohen's d_z = effect / sd(differences) (effect defaults to the observed
    mean difference), the paired-t sample size from statsmodels' `TTestPower`, divided by the Wilcoxon test's
    asymptotic relative efficiency 3/π (normal differences), and never below the smallest n at which the exact test
    can reach `alpha` at all (6 images for 0.05). `alpha` is the per-comparison level: pass α/m for a
    Bonferroni-safe bound on a Holm-corrected family of m comparisons.
    """
    from statsmodels.stats.power import TTestPower

    d = np.asarray(differences, float)
    sd = d.std(ddof=1)
    eff = float(np.mean(d)) if effect is None else float(effect)
    if not np.isfinite(sd) or sd == 0 or eff == 0:
        return float("nan")
    dz = abs(eff) / sd
    # the exact two-sided signed-rank test cannot reach p < alpha with fewer images than this (all signs equal)
    floor = next(n for n in range(1, 64) if 2.0 / 2**n < alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            n_t = float(TTestPower().solve_power(effect_size=dz, power=power, alpha=alpha, alternative="two-sided"))
        except Exception:  # noqa: BLE001 - the root finder fails for very large effects (n < 2)
            n_t = float("nan")
    if not np.isfinite(n_t):
        n_t = 2.0 if dz > 1 else float("nan")
    return float(max(floor, np.ceil(n_t / (3 / np.pi)))) if np.isfinite(n_t) else float("nan")


def mean_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each configuration over blocks (1 = best)."""
    ranks = scores.rank(axis=1, ascending=not higher_is_better, method="average")
    return ranks.mean().sort_values()
