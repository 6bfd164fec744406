"""Factor effects of the factorial design, paired over test images.

For a factor F (feature level, pretraining, λ or Ψ target) and two of its levels a, b, the effect on an image is
score(a) − score(b) with every other factor held fixed, averaged over the other factors' combinations:
- `main`: averaged over all other factors;
- `simple`: within one level of another factor G (e.g. the feature-level effect with ct-rotnet encoders);
- `interaction`: for factors F, G and levels a, b of F and g1, g2 of G, how much the a − b effect changes between
  g1 and g2: [s(a,g1) − s(b,g1)] − [s(a,g2) − s(b,g2)], averaged over the remaining factors.
Each row is a two-sided Wilcoxon signed-rank test of the per-image effects against zero with the rank-biserial r,
the median effect with a bootstrap CI, and Holm adjustment over every row of the metric (one family).
The pixel-only baseline has no level of these factors and is not part of this analysis.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from analysis.load import BASELINE, block_key
from analysis.stats import adjust, median_ci, rank_biserial, wilcoxon_pair

FACTORS = ("feature_level", "pretraining", "lam", "weighting")
COLUMNS = ["metric", "kind", "factor", "a", "b", "context", "n", "mean_diff", "median_diff", "ci_low", "ci_high",
           "statistic", "pvalue", "pvalue_adj", "effect_size"]


def _label(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    return str(v)


def with_weighting(per_image: pd.DataFrame) -> pd.DataFrame:
    """With Ψ-target trials beside fixed-λ ones, λ and Ψ target become one factor `weighting` ("λ=0.1", "Ψ=0.95")."""
    if "psi_target" not in per_image or per_image["psi_target"].isna().all():
        return per_image
    x = per_image.copy()
    x["weighting"] = [f"Ψ={p:g}" if pd.notna(p) else f"λ={lam:g}" for lam, p in zip(x["lam"], x["psi_target"])]
    return x.drop(columns=["lam"])


def design_factors(per_image: pd.DataFrame) -> list[str]:
    """Factors with more than one level among the non-baseline trials."""
    per_image = with_weighting(per_image)
    x = per_image[per_image["configuration"] != BASELINE]
    return [f for f in FACTORS if f in x and x[f].dropna().nunique() > 1]


def cell_means(per_image: pd.DataFrame, metric: str, factors: list[str]) -> pd.DataFrame:
    """Seed-averaged metric per (block, factor levels) for the non-baseline trials; factor levels as strings."""
    per_image = with_weighting(per_image)
    block = block_key(per_image)
    x = per_image[per_image["configuration"] != BASELINE].copy()
    for f in factors:
        x[f] = x[f].map(_label)
    return x.groupby([block, *factors], dropna=False)[metric].mean().rename("y").reset_index().rename(columns={block: "block"})


def _per_block(cells: pd.DataFrame, factor: str, a: str, b: str) -> pd.Series:
    """Per block: mean over the other factors' combinations of y(a) − y(b); combinations missing either are dropped."""
    others = [c for c in cells.columns if c not in ("block", "y", factor)]
    wide = cells.pivot_table(index=["block", *others], columns=factor, values="y", aggfunc="mean", dropna=False)
    if a not in wide or b not in wide:
        return pd.Series(dtype=float)
    d = (wide[a] - wide[b]).dropna()
    return d.groupby(level="block").mean()


def _row(metric, kind, factor, a, b, context, d: pd.Series) -> dict:
    v = d.to_numpy(float)
    if v.size < 2:
        return {}
    stat, p = wilcoxon_pair(v, np.zeros_like(v))
    lo, hi = median_ci(v)
    return {"metric": metric, "kind": kind, "factor": factor, "a": a, "b": b, "context": context, "n": int(v.size),
            "mean_diff": float(v.mean()), "median_diff": float(np.median(v)), "ci_low": lo, "ci_high": hi,
            "statistic": stat, "pvalue": p, "effect_size": rank_biserial(v, np.zeros_like(v))}


def factor_effects(per_image: pd.DataFrame, metric: str, correction: str = "holm") -> pd.DataFrame:
    """Main, simple and two-way interaction effects of every design factor on `metric` (see module docstring)."""
    factors = design_factors(per_image)
    if not factors:
        return pd.DataFrame(columns=COLUMNS)
    cells = cell_means(per_image, metric, factors)
    rows = []
    for f in factors:
        levels = sorted(cells[f].unique(), key=_sort_key)
        for a, b in combinations(levels, 2):
            rows.append(_row(metric, "main", f, a, b, "all", _per_block(cells, f, a, b)))
            for g in factors:
                if g == f:
                    continue
                for gv in sorted(cells[g].unique(), key=_sort_key):
                    sub = cells[cells[g] == gv].drop(columns=g)
                    rows.append(_row(metric, "simple", f, a, b, f"{g}={gv}", _per_block(sub, f, a, b)))
    for f, g in combinations(factors, 2):
        for a, b in combinations(sorted(cells[f].unique(), key=_sort_key), 2):
            for g1, g2 in combinations(sorted(cells[g].unique(), key=_sort_key), 2):
                d1 = _per_block(cells[cells[g] == g1].drop(columns=g), f, a, b)
                d2 = _per_block(cells[cells[g] == g2].drop(columns=g), f, a, b)
                d = (d1 - d2).dropna()
                rows.append(_row(metric, "interaction", f"{f} × {g}", f"{a} − {b}", f"{g1} vs {g2}", "all", d))
    out = pd.DataFrame([r for r in rows if r], columns=[c for c in COLUMNS if c != "pvalue_adj"])
    out["pvalue_adj"] = adjust(out["pvalue"].to_numpy(), correction)
    return out[COLUMNS]


def _sort_key(v: str):
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)
