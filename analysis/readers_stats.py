"""The statistics of a reader study, as thin wrappers around the libraries that compute them.

- `icc`: intraclass correlations (pingouin.intraclass_corr; ICC2 / ICC2k = two-way random effects, absolute
  agreement, single reader / mean of k readers), with their 95% CIs.
- `alpha`: Krippendorff's α (krippendorff.alpha) on a readers × units matrix, NaN = not rated.
- `mixed_means`: score ~ configuration with the slice as group and the reader as a variance component
  (statsmodels MixedLM), the per-configuration mean score with its 95% CI and the Wald test that all are equal.
- `tau_ci`: Kendall's τ-b (scipy.stats.kendalltau) with a seeded percentile bootstrap 95% CI.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

BOOT = 1000
#: pingouin ≥ 0.7 names the ICCs after McGraw & Wong (A = absolute agreement, C = consistency); we keep Shrout &
#: Fleiss's names (older pingouin's): ICC2 = ICC(A,1), two-way random, absolute agreement, one reader.
_SHROUT_FLEISS = {"ICC(1,1)": "ICC1", "ICC(A,1)": "ICC2", "ICC(C,1)": "ICC3", "ICC(1,k)": "ICC1k",
                  "ICC(A,k)": "ICC2k", "ICC(C,k)": "ICC3k"}


def icc(long: pd.DataFrame, target="target", rater="rater", rating="rating") -> dict:
    """{"ICC1" … "ICC3k": (value, ci_low, ci_high)} of complete targets (rated by every rater); {} if < 2 × 2."""
    import pingouin

    wide = long.pivot_table(index=target, columns=rater, values=rating, aggfunc="mean").dropna()
    if wide.shape[0] < 2 or wide.shape[1] < 2 or np.nanstd(wide.to_numpy()) == 0:
        return {}
    data = wide.reset_index().melt(id_vars=target, var_name=rater, value_name=rating)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pingouin.intraclass_corr(data=data, targets=target, raters=rater, ratings=rating)
    ci = "CI95" if "CI95" in table else "CI95%"
    return {_SHROUT_FLEISS.get(row["Type"], row["Type"]): (float(row["ICC"]), float(row[ci][0]), float(row[ci][1]))
            for _, row in table.iterrows()}


def alpha(matrix, level: str) -> float:
    """Krippendorff's α of a raters × units matrix (NaN = missing) at `level` (nominal, ordinal, interval)."""
    import krippendorff

    m = np.asarray(matrix, dtype=float)
    values = m[np.isfinite(m)]
    if m.ndim != 2 or m.shape[0] < 2 or len(np.unique(values)) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=m, level_of_measurement=level))


def _fit_mixed(df: pd.DataFrame):
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm("score ~ 0 + C(configuration)", df, groups=df["block"],
                            vc_formula={"reader": "0 + C(reader)"}, re_formula="1")
        return model.fit(reml=True)


def mixed_means(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """(one row per configuration: mean, ci_low, ci_high, n; the Wald test {chi2, df, p, method}) from columns
    score, configuration, block (slice), reader. Falls back to plain means (normal CIs) and a Kruskal-Wallis test
    when the mixed model cannot be fitted (too few data), saying so in `method`."""
    configs = sorted(df["configuration"].unique())
    n = df.groupby("configuration")["score"].size()
    try:
        fit = _fit_mixed(df)
        names = [f"C(configuration)[{c}]" for c in configs]
        b, cov = fit.fe_params[names].to_numpy(), fit.cov_params().loc[names, names].to_numpy()
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
            raise ValueError("singular fit")
        se = np.sqrt(np.diag(cov))
        rows = pd.DataFrame({"configuration": configs, "mean": b, "ci_low": b - 1.96 * se, "ci_high": b + 1.96 * se,
                             "n": [int(n[c]) for c in configs]})
        test = _wald(b, cov) | {"method": "MixedLM (slice group, reader variance component)"}
    except Exception:  # noqa: BLE001 - statsmodels raises many kinds on degenerate data
        g = df.groupby("configuration")["score"]
        m, se = g.mean(), g.sem().fillna(0.0)
        rows = pd.DataFrame({"configuration": configs, "mean": [m[c] for c in configs],
                             "ci_low": [m[c] - 1.96 * se[c] for c in configs],
                             "ci_high": [m[c] + 1.96 * se[c] for c in configs], "n": [int(n[c]) for c in configs]})
        groups = [df.loc[df["configuration"] == c, "score"] for c in configs]
        p = float(stats.kruskal(*groups).pvalue) if len(configs) > 1 and df["score"].nunique() > 1 else float("nan")
        test = {"chi2": float("nan"), "df": len(configs) - 1, "p": p,
                "method": "plain means (mixed model not estimable); Kruskal-Wallis p"}
    return rows, test


def _wald(b: np.ndarray, cov: np.ndarray) -> dict:
    """Wald χ² that all configuration means are equal (contrasts of each with the first)."""
    k = len(b)
    if k < 2:
        return {"chi2": float("nan"), "df": 0, "p": float("nan")}
    L = np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])
    d = L @ b
    chi2 = float(d @ np.linalg.pinv(L @ cov @ L.T) @ d)
    return {"chi2": chi2, "df": k - 1, "p": float(stats.chi2.sf(chi2, k - 1))}


def tau(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(stats.kendalltau(x[ok], y[ok], variant="b").statistic)


def tau_ci(x, y, seed: int = 0, n_boot: int = BOOT) -> tuple[float, float, float]:
    """(τ-b, 2.5%, 97.5% of τ over `n_boot` resamples of the pairs, seeded); NaN where undefined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    t = tau(x, y)
    if not np.isfinite(t):
        return t, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    boots = np.array([tau(x[i], y[i]) for i in idx])
    boots = boots[np.isfinite(boots)]
    if not len(boots):
        return t, float("nan"), float("nan")
    return t, float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def binomial(k: int, n: int) -> float:
    """Two-sided exact binomial p of k successes in n against 1/2."""
    return float(stats.binomtest(int(k), int(n), 0.5).pvalue) if n else float("nan")
