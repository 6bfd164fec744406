"""Factor effects of the factorial design, paired over test images.

For a factor F (feature level, pretraining, λ or Ψ target) and two of its levels a, b, the effect on an image is
score(a) − score(b) with every other factor held fixed, averaged over the other factors' combinations:
- `main`: averaged over all other factors;
- `simple`: within one level of another factor G (e.g. the feature-level effect with ct-rotnet encoders);
- `interaction`: for factors F, G and levels a, b of F and g1, g2 of G, how much the a − b effect changes between
  g1 and g2: [s(a,g1) − s(b,g1)] − [s(a,g2) − s(b,g2)], averaged over the remaining factors.
A factor with more than 6 levels is compared level to next level (in their order) instead of every pair.
Each row is a two-sided Wilcoxon signed-rank test of the per-image effects against zero with the rank-biserial r,
the median effect with a bootstrap CI, and Holm adjustment over every row of the metric (one family).
The pixel-only baseline has no level of these factors and is not part of this analysis.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from analysis.load import BASELINE, block_key
from analysis.pvalues import adjust
from analysis.signed_rank import paired_tests
from study.planning.grid import weighting_label  # the one place configuration labels are made

FACTORS = ("loss", "feature_level", "pretraining", "lam", "weighting")
MAX_LEVELS_ALL_PAIRS = 6
COLUMNS = ["metric", "kind", "factor", "a", "b", "context", "n", "mean_diff", "median_diff", "ci_low", "ci_high",
           "statistic", "pvalue", "pvalue_adj", "effect_size"]


def level_label(v) -> str:
    """A factor level as the report writes it: floats in %g (0.1, 1e-05), everything else as str."""
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    return str(v)


def with_weighting(per_image: pd.DataFrame) -> pd.DataFrame:
    """With Ψ-target trials beside fixed-λ ones, λ and Ψ target become one factor `weighting` ("λ=0.1", "Ψ=0.95")."""
    if "psi_target" not in per_image or per_image["psi_target"].isna().all():
        return per_image
    x = per_image.copy()
    x["weighting"] = [weighting_label(lam, p) for lam, p in zip(x["lam"], x["psi_target"])]
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
        x[f] = x[f].map(level_label)
    return x.groupby([block, *factors], dropna=False)[metric].mean().rename("y").reset_index().rename(columns={block: "block"})


def _level_pairs(levels: list[str]) -> list[tuple[str, str]]:
    """Every pair of levels, or consecutive levels only for a factor with more than MAX_LEVELS_ALL_PAIRS (16 VGG
    layers would give 120 pairs, and their interactions with 8 λ values 3,360 rows)."""
    if len(levels) <= MAX_LEVELS_ALL_PAIRS:
        return list(combinations(levels, 2))
    return list(zip(levels, levels[1:]))


def _block_diffs(cells: pd.DataFrame, factor: str, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], pd.Series]:
    """Per pair (a, b), per block: mean over the other factors' combinations of y(a) − y(b); combinations missing
    either level are left out (one pivot for all pairs)."""
    others = [c for c in cells.columns if c not in ("block", "y", factor)]
    wide = cells.pivot_table(index=["block", *others], columns=factor, values="y", aggfunc="mean", dropna=False)
    diffs = {(a, b): wide[a] - wide[b] for a, b in pairs if a in wide and b in wide}
    if not diffs:
        return {}
    means = pd.DataFrame(diffs).groupby(level="block").mean()  # NaN-skipping: the combinations present
    return {pair: means[pair].dropna() for pair in diffs}


def factor_effects(per_image: pd.DataFrame, metric: str, correction: str = "holm") -> pd.DataFrame:
    """Main, simple and two-way interaction effects of every design factor on `metric` (see module docstring)."""
    factors = design_factors(per_image)
    if not factors:
        return pd.DataFrame(columns=COLUMNS)
    cells = cell_means(per_image, metric, factors)
    levels = {f: sorted(cells[f].unique(), key=level_order) for f in factors}
    pairs = {f: _level_pairs(levels[f]) for f in factors}
    rows: list[tuple[dict, pd.Series]] = []
    simple: dict[tuple[str, str, str], dict] = {}  # (factor, other factor, its level) -> pair -> per-block effect
    for f in factors:
        for (a, b), d in _block_diffs(cells, f, pairs[f]).items():
            rows.append(({"kind": "main", "factor": f, "a": a, "b": b, "context": "all"}, d))
        for g in factors:
            if g == f:
                continue
            for gv in levels[g]:
                simple[f, g, gv] = _block_diffs(cells[cells[g] == gv].drop(columns=g), f, pairs[f])
                for (a, b), d in simple[f, g, gv].items():
                    rows.append(({"kind": "simple", "factor": f, "a": a, "b": b, "context": f"{g}={gv}"}, d))
    for f, g in combinations(factors, 2):
        for a, b in pairs[f]:
            for g1, g2 in _level_pairs(levels[g]):
                d1, d2 = simple[f, g, g1].get((a, b)), simple[f, g, g2].get((a, b))
                if d1 is not None and d2 is not None:
                    rows.append(({"kind": "interaction", "factor": f"{f} × {g}", "a": f"{a} − {b}",
                                  "b": f"{g1} vs {g2}", "context": "all"}, (d1 - d2).dropna()))
    rows = [(meta, d) for meta, d in rows if len(d) >= 2]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    matrix = pd.concat([d.rename(i) for i, (_, d) in enumerate(rows)], axis=1)
    t = paired_tests(matrix.to_numpy(float))
    out = pd.DataFrame([meta for meta, _ in rows])
    out.insert(0, "metric", metric)
    out["n"] = t["n"].astype(int)
    out["mean_diff"] = matrix.mean().to_numpy()
    out["median_diff"], out["ci_low"], out["ci_high"] = t["median"], t["ci_low"], t["ci_high"]
    out["statistic"], out["pvalue"], out["effect_size"] = t["statistic"], t["pvalue"], t["effect_size"]
    out["pvalue_adj"] = adjust(out["pvalue"].to_numpy(), correction)
    return out[COLUMNS]


def level_order(v: str):
    """Sort key of level labels: numbers by value first, then the others by name."""
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)
