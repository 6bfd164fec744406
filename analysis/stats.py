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
from scipy.special import ndtr, ndtri
from statsmodels.stats.multitest import multipletests


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over k configurations in n blocks.

    `statistic` is scipy's `friedmanchisquare` χ², which is corrected for tied ranks within blocks (divided by
    1 − Σ(t³ − t) / (n (k³ − k))); `kendall_w` = χ² / (n (k − 1)) and the Iman–Davenport F derived from it are therefore
    tie-corrected too. `line()` says so.
    """

    statistic: float
    pvalue: float
    kendall_w: float
    n_blocks: int
    k: int
    iman_davenport_f: float = float("nan")
    iman_davenport_pvalue: float = float("nan")

    def line(self) -> str:
        return (f"Friedman χ²({self.k - 1}) = {self.statistic:.2f} (tie-corrected), {p_clause(self.pvalue)}, "
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
    out = np.full(p.shape, np.nan)  # a comparison without a test (NaN) is left out of the family
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = _holm(p[ok]) if correction == "holm" else multipletests(p[ok], method=correction)[1]
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment. statsmodels' `multipletests(method="holm")` gives the same numbers but runs a full
    `gc.collect()` on every call (about 50 ms in a report process; 38% of the time to build a study's claims)."""
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return out


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
            out["ci_low"][cols], out["ci_high"][cols] = _median_cis(x)
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


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """np.median of NaN-free data, bit for bit (the middle element, or the two middle ones added and halved), from a
    full sort: several times faster than np.median on the many short rows of a bootstrap."""
    s = np.moveaxis(np.sort(x, axis=axis), axis, -1)
    n = s.shape[-1]
    return s[..., n // 2].copy() if n % 2 else (s[..., n // 2 - 1] + s[..., n // 2]) / 2


def _jackknife_acceleration(theta_i: np.ndarray) -> float:
    """scipy's BCa acceleration from one sample's jackknife statistics, with the arithmetic of a one-sample
    `bootstrap` call (a 1-D mean and sums). NaN when the jackknife values are all equal (0 / 0)."""
    theta_i = np.ascontiguousarray(theta_i, dtype=float)
    n = float(theta_i.shape[-1])
    u = (n - 1) * (np.mean(theta_i, axis=-1, keepdims=True) - theta_i)
    num = np.sum(u**3, axis=-1) / n**3
    den = np.sum(u**2, axis=-1) / n**2
    with np.errstate(all="ignore"):
        return float(1 / 6 * (0 + num) / (0 + den) ** (3 / 2))


def _median_cis(x: np.ndarray, n_resamples: int = 2000, seed: int = 0, chunk: int = 256,
                confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """`median_ci` for every column of x (no NaN) at once: the same resamples as per-column calls with the same seed,
    and the same intervals.

    One batched BCa bootstrap per chunk of columns. Where a column's jackknife medians are all equal (ties at the
    median), the acceleration is 0 / 0 in a per-column call, whose interval is then non-finite and `median_ci` falls
    back to percentile; the batched call sums the jackknife values in another order, and a rounding error in their
    mean gives a spurious finite acceleration (± 1 / (6 √n)) and a different interval. For those columns (and any whose
    jackknife values are equal to within rounding) the acceleration is recomputed as a one-column call computes it,
    the BCa interval rebuilt from the same bootstrap distribution, and columns left non-finite get the percentile
    interval of that distribution, as in `median_ci`."""
    k = x.shape[1]
    lo, hi = np.full(k, np.nan), np.full(k, np.nan)
    n = x.shape[0]
    if n < 2:
        lo[:] = hi[:] = np.median(x, axis=0) if n else np.nan
        return lo, hi
    flat = np.all(x == x[0], axis=0)
    lo[flat] = hi[flat] = x[0, flat]
    idx = np.flatnonzero(~flat)
    chunk = max(1, min(chunk, 2**24 // (n_resamples * n)))  # resamples of a chunk: at most 16M values
    alpha = (1 - confidence) / 2
    z_alpha = float(ndtri(alpha))
    leave_one_out = np.array([np.delete(np.arange(n), i) for i in range(n)])  # (n, n − 1), as scipy's jackknife
    for start in range(0, idx.size, chunk):
        cols = idx[start:start + chunk]
        data = np.ascontiguousarray(x[:, cols].T)  # (columns, n)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = sps.bootstrap((data,), _median, axis=-1, vectorized=True, method="BCa", confidence_level=confidence,
                                n_resamples=n_resamples, rng=np.random.default_rng(seed))
            a, b = (np.array(v, dtype=float, ndmin=1) for v in res.confidence_interval)
            theta_b = res.bootstrap_distribution  # (columns, n_resamples)
            jack = _median(data[:, leave_one_out], axis=-1)  # (columns, n) jackknife medians
            scale = np.abs(jack).max(axis=-1)
            fix = np.flatnonzero(np.ptp(jack, axis=-1) <= 1e-12 * scale)
            if fix.size:
                acc, cache = np.empty(fix.size), {}
                for i, row in enumerate(jack[fix]):  # few distinct rows: tied medians repeat
                    key = row.tobytes()
                    acc[i] = cache[key] if key in cache else cache.setdefault(key, _jackknife_acceleration(row))
                # scipy's BCa interval (Efron & Tibshirani 14.3, 15.4) with that acceleration
                tb = theta_b[fix]
                theta_hat = _median(data[fix], axis=-1)[:, None]
                pct = ((tb < theta_hat).sum(axis=-1) + (tb <= theta_hat).sum(axis=-1)) / (2 * tb.shape[-1])
                z0 = ndtri(pct)
                num1, num2 = z0 + z_alpha, z0 - z_alpha
                a1 = ndtr(z0 + num1 / (1 - acc * num1))
                a2 = ndtr(z0 + num2 / (1 - acc * num2))
                ci = sps.quantile(tb, np.stack([a1, a2], axis=-1), axis=-1)
                a[fix], b[fix] = ci[..., 0], ci[..., 1]
            bad = np.flatnonzero(~(np.isfinite(a) & np.isfinite(b)))
            if bad.size:  # percentile interval of the same bootstrap distribution (what method="percentile" gives)
                ci = sps.quantile(theta_b[bad], np.asarray([alpha, 1 - np.float64(alpha)]), axis=-1)
                a[bad], b[bad] = ci[..., 0], ci[..., 1]
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


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference of mean ranks for the Nemenyi test (Demšar 2006): CD = q_α √(k (k + 1) / (6 n)), with
    q_α the studentized range quantile for k groups and infinite degrees of freedom divided by √2 (k = 4, α = 0.05:
    q_α = 2.569). Two of k configurations ranked over n blocks differ when their mean ranks differ by at least CD."""
    if k < 2 or n < 1:
        raise ValueError(f"nemenyi_cd needs k >= 2 configurations and n >= 1 blocks, got k = {k}, n = {n}")
    q = float(sps.studentized_range.ppf(1 - alpha, k, np.inf)) / np.sqrt(2)
    return q * float(np.sqrt(k * (k + 1) / (6 * n)))


def conover(scores: pd.DataFrame, correction: str = "holm") -> pd.DataFrame:
    """Conover post-hoc test after Friedman (scikit-posthocs), p-values adjusted by `correction`."""
    import scikit_posthocs as sp

    x = scores.dropna()
    m = sp.posthoc_conover_friedman(x.to_numpy(), p_adjust=None if correction == "none" else correction)
    m.index = m.columns = list(x.columns)
    return m


def mixed_model(long: pd.DataFrame, value: str, group: str = "block", config: str = "configuration",
                reference: str | None = None, network: str | None = "run_key") -> dict:
    """Sensitivity check on every (image, network) row: `value ~ C(config)` with crossed random intercepts for the
    image (`group`) and the trained network (`network`, e.g. run_key), as statsmodels variance components in one
    group (REML); without a `network` column, a random intercept per image only (which treats every image × seed row
    as independent: pseudo-replicated when networks vary). Returns the Wald χ² test of the configuration effect and
    each configuration's coefficient against `reference`.
    """
    import statsmodels.formula.api as smf

    crossed = network is not None and network in long
    cols = [value, group, config] + ([network] if crossed else [])
    d = long[cols].dropna().rename(columns={value: "y", group: "g", config: "c", **({network: "n"} if crossed else {})})
    levels = sorted(d["c"].unique())
    ref = reference if reference in levels else levels[0]
    d["c"] = pd.Categorical(d["c"], categories=[ref] + [v for v in levels if v != ref])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if crossed:
                model = smf.mixedlm("y ~ c", d.assign(one=1), groups="one",
                                    vc_formula={"image": "0 + C(g)", "network": "0 + C(n)"})
            else:
                model = smf.mixedlm("y ~ c", d, groups=d["g"])
            full = model.fit(reml=True)
        except Exception as err:  # noqa: BLE001 - a singular fit is a result to report, not a crash
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    names = [n for n in full.fe_params.index if n.startswith("c[T.")]
    b = full.fe_params[names].to_numpy()
    cov = full.cov_params().loc[names, names].to_numpy()
    try:
        wald = float(b @ np.linalg.solve(cov, b))
    except np.linalg.LinAlgError:
        wald = float("nan")
    ci = full.conf_int()
    coefs = [{"configuration": name[len("c[T."):-1], "coef": float(full.params[name]), "ci_low": float(ci.loc[name, 0]),
              "ci_high": float(ci.loc[name, 1]), "pvalue": float(full.pvalues[name])} for name in names]
    return {"ok": True, "reference": ref, "wald": wald, "df": len(names), "pvalue": float(sps.chi2.sf(wald, len(names))),
            "crossed": crossed, "converged": bool(full.converged), "n_obs": int(len(d)),
            "n_groups": int(d["g"].nunique()), "n_networks": int(d["n"].nunique()) if crossed else None,
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
