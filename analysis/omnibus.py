"""The omnibus question over a per-image score matrix (index = block/test image, columns = configuration) and the
post-hoc tests that follow it: Friedman with Kendall's W and the Iman–Davenport F, mean ranks, Nemenyi (with its
critical difference) and Conover (scikit-posthocs), and square matrices from pairwise tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.pvalues import p_clause


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


def mean_ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each configuration over blocks (1 = best)."""
    ranks = scores.rank(axis=1, ascending=not higher_is_better, method="average")
    return ranks.mean().sort_values()


def pvalue_matrix(pairwise: pd.DataFrame, column: str = "pvalue_adj") -> pd.DataFrame:
    """Square symmetric matrix of `column` from a pairwise table (diagonal 1), e.g. for a CD diagram."""
    return square_matrix(pairwise, column)


def square_matrix(pairwise: pd.DataFrame, column: str) -> pd.DataFrame:
    """Square symmetric matrix of `column` from a table with one row per pair (a, b); diagonal 1, names in the order
    they first appear among a, then b."""
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
