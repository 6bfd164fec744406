"""Tests over per-image score matrices (index = block/test image, columns = configuration).

Small functions over tidy tables; scipy and statsmodels do the tests, this module makes the choices:
Friedman with Kendall's W for the omnibus question, pairwise two-sided Wilcoxon signed-rank tests with Holm
correction and the matched-pairs rank-biserial correlation as effect size.
"""

from __future__ import annotations

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
    return FriedmanResult(stat, float(res.pvalue), stat / (n * (k - 1)) if np.isfinite(stat) else float("nan"), n, k)


def rank_biserial(a, b) -> float:
    """Matched-pairs rank-biserial correlation of a − b (zero differences dropped): (R+ − R−) / (R+ + R−) ∈ [−1, 1]."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    r = sps.rankdata(np.abs(d))
    return float((r[d > 0].sum() - r[d < 0].sum()) / r.sum())


def pairwise_wilcoxon(scores: pd.DataFrame, correction: str = "holm") -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test for every pair of configurations, p-values adjusted for the family.

    Columns: a, b, n, median_diff (a − b), statistic, pvalue, pvalue_adj, effect_size (rank-biserial, > 0 when a > b).
    `correction`: "holm" (default), "fdr_bh" (Benjamini–Hochberg) or "none".
    """
    x = scores.dropna()
    rows = []
    for a, b in combinations(x.columns, 2):
        d = x[a].to_numpy() - x[b].to_numpy()
        if np.all(d == 0):
            stat, p = float("nan"), 1.0
        else:
            res = sps.wilcoxon(x[a], x[b], zero_method="wilcox", alternative="two-sided")
            stat, p = float(res.statistic), float(res.pvalue)
        rows.append({"a": a, "b": b, "n": len(d), "median_diff": float(np.median(d)), "statistic": stat, "pvalue": p,
                     "effect_size": rank_biserial(x[a], x[b])})
    out = pd.DataFrame(rows, columns=["a", "b", "n", "median_diff", "statistic", "pvalue", "effect_size"])
    if out.empty:
        out["pvalue_adj"] = []
    elif correction == "none":
        out["pvalue_adj"] = out["pvalue"]
    else:
        out["pvalue_adj"] = multipletests(out["pvalue"].to_numpy(), method=correction)[1]
    return out[["a", "b", "n", "median_diff", "statistic", "pvalue", "pvalue_adj", "effect_size"]]


def mean_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each configuration over blocks (1 = best)."""
    ranks = scores.rank(axis=1, ascending=not higher_is_better, method="average")
    return ranks.mean().sort_values()
