"""Paired comparisons by the two-sided Wilcoxon signed-rank test: one pair, every column of a table of paired
differences at once (`paired_tests`), every pair of configurations of a score matrix (`pairwise_wilcoxon`, adjusted
for the family), the matched-pairs rank-biserial correlation as effect size, and the images needed for power."""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.bootstrap import median_cis
from analysis.pvalues import adjust


def wilcoxon_pair(a, b) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank (zero differences discarded); (nan, 1) when every difference is zero."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if np.all(d == 0):
        return float("nan"), 1.0
    res = sps.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def rank_biserial(a, b) -> float:
    """Matched-pairs rank-biserial correlation of a − b (zero differences dropped): (R+ − R−) / (R+ + R−) ∈ [−1, 1]."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    r = sps.rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


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
    valid = ~np.isnan(d)
    count = valid.sum(axis=0)
    out["n"][:] = count
    if not valid.all():
        # move each column's non-NaN rows to the top, in their order: that sequence is all a per-column call sees
        d = np.take_along_axis(d, np.argsort(~valid, axis=0, kind="stable"), axis=0)
    for n in np.unique(count):
        if n == 0:
            continue
        cols = np.flatnonzero(count == n)
        x = d[:n, cols]
        out["median"][cols] = np.median(x, axis=0)
        zero = np.all(x == 0, axis=0)
        out["statistic"][cols[zero]], out["pvalue"][cols[zero]], out["effect_size"][cols[zero]] = np.nan, 1.0, 0.0
        live = cols[~zero]
        if live.size:
            y = x[:, ~zero]
            out["statistic"][live], out["pvalue"][live] = _wilcoxon_columns(y)
            a = np.abs(y)
            a[y == 0] = np.nan
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = sps.rankdata(a, axis=0, nan_policy="omit")
            out["effect_size"][live] = (np.nansum(np.where(y > 0, r, 0), axis=0)
                                        - np.nansum(np.where(y < 0, r, 0), axis=0)) / np.nansum(r, axis=0)
        if ci:
            out["ci_low"][cols], out["ci_high"][cols] = median_cis(x)
    return out


def _wilcoxon_columns(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`sps.wilcoxon(col, zero_method="wilcox", alternative="two-sided")` for every column of y (no NaN, no all-zero
    column), statistic and p-value.

    With method="auto" scipy picks the null distribution once per call, from the whole array: exact when n ≤ 50 and
    there is no tie (among |d|) and no zero anywhere, else a permutation test when n ≤ 13, else the normal
    approximation. In one 2-D call a single tie or zero in any column would switch every column, so the columns are
    grouped by the choice a one-column call makes, and scipy is called once per group. The permutation group is
    computed by `_wilcoxon_sign_flip` instead: scipy evaluates that test one column and one of the 2ⁿ sign flips at
    a time (about a second per column at n = 13)."""
    n, m = y.shape
    stat, p = np.full(m, np.nan), np.full(m, np.nan)
    a = np.sort(np.abs(y), axis=0)
    irregular = (a[0] == 0) | (a[1:] == a[:-1]).any(axis=0)  # a zero, or tied absolute differences
    for group in (np.flatnonzero(~irregular), np.flatnonzero(irregular)):
        if group.size == 0:
            continue
        if n <= 13 and irregular[group[0]]:
            stat[group], p[group] = _wilcoxon_sign_flip(y[:, group])
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = sps.wilcoxon(y[:, group], axis=0, zero_method="wilcox", alternative="two-sided")
        stat[group], p[group] = res.statistic, res.pvalue
    return stat, p


def _wilcoxon_sign_flip(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two-sided signed-rank test of scipy's method="auto" for n ≤ 13 with ties or zeros, for every column of y:
    the exact permutation test over all 2ⁿ sign flips (zeros ranked out, flipping them changes nothing), p =
    2 min(#{T ≤ t}, #{T ≥ t}) / 2ⁿ clipped to 1, with T = R+. The null counts come from the generating function
    Π (1 + x^(2 rᵢ)) (ranks are multiples of ½), all columns at once; the statistic is min(R+, R−)."""
    n, m = y.shape
    a = np.abs(y)
    a[y == 0] = np.nan
    r = np.nan_to_num(sps.rankdata(a, axis=0, nan_policy="omit"))  # average ranks of the non-zero |d|, 0 for zeros
    r_plus, r_minus = np.where(y > 0, r, 0).sum(axis=0), np.where(y < 0, r, 0).sum(axis=0)
    w = np.rint(2 * r).astype(np.int64)  # (n, m) doubled ranks
    top = n * (n + 1)  # the largest doubled sum
    counts = np.zeros((m, top + 1), np.int64)
    counts[:, 0] = 1
    s = np.arange(top + 1)
    for i in range(n):  # multiply by (1 + x^w): counts[s] += counts[s − w]
        src = s[None, :] - w[i][:, None]
        counts = counts + np.where(src >= 0, np.take_along_axis(counts, np.clip(src, 0, None), axis=1), 0)
    t = np.rint(2 * r_plus).astype(np.int64)
    below = np.where(s[None, :] <= t[:, None], counts, 0).sum(axis=1)
    above = np.where(s[None, :] >= t[:, None], counts, 0).sum(axis=1)
    total = float(2**n)
    p = np.clip(np.minimum(below / total, above / total) * 2, 0.0, 1.0)
    return np.minimum(r_plus, r_minus), p


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
