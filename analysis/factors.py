"""Design factors on the per-network means: how much each factor matters and contrasts between its levels.

- `importance`: Type II sums of squares of the factors' main effects and two-way interactions (least squares on the
  configuration means weighted by their networks, pixel-only baseline left out), each tested with a quasi-F whose
  denominator is the term's expected mean square under the null: σ²_w plus the term × test-unit mean square (the
  term's own sum of squares on every patient, or image within patient; see analysis.networks), Holm over the terms
  of a metric. `share` is
  the term's sum of squares over the total between-network sum of squares (η²); what no term explains is split into
  higher-order interactions and between-seed (network) variation.
- `level_weights`, `simple_weights`, `interaction_weights`: the configuration weights of a level contrast (a − b
  averaged over the combinations of the other factors where both levels exist), within one level of another factor,
  or the change of that contrast between two levels of a second factor.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.effects import level_label, level_order, design_factors, with_weighting
from analysis.networks import Networks, network_means, non_baseline
from analysis.pvalues import adjust
from analysis.style import factor_name



def design_networks(per_image: pd.DataFrame, metric: str, min_patients: int = 5) -> tuple[Networks, list[str]]:
    """Per-network means with the design factors as string columns (λ and Ψ target merged where both occur)."""
    x = with_weighting(per_image)
    factors = design_factors(per_image)
    nets = network_means(x, metric, factors, min_patients)
    table = nets.table.copy()
    for f in factors:
        table[f] = table[f].map(level_label)
    return replace(nets, table=table), factors


def levels(nets: Networks, factor: str) -> list[str]:
    return sorted(non_baseline(nets).table[factor].dropna().unique(), key=level_order)


def configuration_cells(nets: Networks, factors: list[str]) -> pd.DataFrame:
    """One row per configuration with its factor levels (baseline excluded)."""
    return non_baseline(nets).table.drop_duplicates("configuration").set_index("configuration")[factors]


def level_weights(cells: pd.DataFrame, factor: str, a: str, b: str) -> dict[str, float]:
    """Weights of 'level a − level b of `factor`', averaged over the other factors' combinations holding both."""
    grid = _level_grid(cells, factor)
    if a not in grid or b not in grid:
        return {}
    both = grid[[a, b]].dropna()
    n = len(both)
    return {c: w / n for ca, cb in zip(both[a], both[b]) for c, w in ((ca, 1.0), (cb, -1.0))} if n else {}


def level_pairs(cells: pd.DataFrame, factor: str, other: str | None = None, level: str | None = None) -> list[dict]:
    """`level_weights` of every pair of levels of `factor` (within `other` = `level` if given), from one grid."""
    if other is not None:
        cells = cells[cells[other] == level].drop(columns=other)
    grid = _level_grid(cells, factor)
    grid = grid[sorted(grid.columns, key=level_order)]
    names, held = grid.to_numpy(object), grid.notna().to_numpy()
    out = []
    for i in range(names.shape[1]):
        for j in range(i + 1, names.shape[1]):
            rows = held[:, i] & held[:, j]
            n = int(rows.sum())
            if n:
                out.append({c: w / n for ca, cb in zip(names[rows, i], names[rows, j])
                            for c, w in ((ca, 1.0), (cb, -1.0))})
    return out


def _level_grid(cells: pd.DataFrame, factor: str) -> pd.DataFrame:
    """index = the other factors' combination, columns = levels of `factor`, cell = configuration name."""
    others = [c for c in cells.columns if c != factor]
    key = pd.MultiIndex.from_frame(cells[others].astype(str)) if others else np.zeros(len(cells))
    frame = pd.DataFrame({"key": pd.factorize(key)[0], "level": cells[factor].to_numpy(), "config": cells.index})
    return frame.drop_duplicates(["key", "level"]).pivot(index="key", columns="level", values="config")


def simple_weights(cells: pd.DataFrame, factor: str, a: str, b: str, other: str, level: str) -> dict[str, float]:
    """Level contrast of `factor` within `other` = `level`."""
    sub = cells[cells[other] == level].drop(columns=other)
    return level_weights(sub, factor, a, b)


def interaction_weights(cells: pd.DataFrame, factor: str, a: str, b: str, other: str, g1: str, g2: str) -> dict[str, float]:
    """(a − b within other = g1) − (a − b within other = g2)."""
    w1, w2 = simple_weights(cells, factor, a, b, other, g1), simple_weights(cells, factor, a, b, other, g2)
    if not w1 or not w2:
        return {}
    out = dict(w1)
    for c, w in w2.items():
        out[c] = out.get(c, 0.0) - w
    return out


def marginal_means(nets: Networks, factors: list[str], factor: str) -> pd.Series:
    """Each level's mean over the configurations that hold it (configuration means weighted equally)."""
    cm = nets.config_means
    cells = configuration_cells(nets, factors)
    return cm.loc[cells.index].groupby(cells[factor]).mean()


def importance(nets: Networks, factors: list[str], alpha_correction: str = "holm") -> pd.DataFrame:
    """Share of between-network variance and quasi-F test per factor and two-way interaction (module docstring)."""
    t = non_baseline(nets).table
    cols = ["term", "share", "ss", "df", "F", "df_den", "pvalue", "pvalue_adj"]
    if not factors or len(t) < 3:
        return pd.DataFrame(columns=cols)
    # the factors' sums of squares from the configuration means weighted by their networks equal those of OLS on the
    # per-network means (the within-configuration variation is orthogonal to them), at a fraction of the cost
    cm = t.groupby(["configuration", *factors])["y"].agg(["mean", "size"]).reset_index()
    u = nets.units
    dev = u.dev[:, u.configurations.get_indexer(cm["configuration"])].T  # configurations × units
    table = type2(cm, [(f,) for f in factors] + list(combinations(factors, 2)), extra=dev)
    ss_total = float(((t["y"] - t["y"].mean()) ** 2).sum())
    within = float(((t["y"] - t.groupby("configuration")["y"].transform("mean")) ** 2).sum())
    df_within = len(t) - t["configuration"].nunique()
    rows = [_term_row(r, nets, ss_total) for r in table.itertuples()]
    higher = max(0.0, float(((cm["mean"] - np.average(cm["mean"], weights=cm["size"])) ** 2 * cm["size"]).sum())
                 - table.attrs["ss_model"])
    df_higher = len(cm) - 1 - table.attrs["df_model"]
    for term, ss, df in (("higher-order interactions", higher, df_higher), ("between seeds (network luck)", within, df_within)):
        rows.append({"term": term, "factors": [], "share": ss / ss_total if ss_total else np.nan, "ss": ss,
                     "df": float(df), "F": np.nan, "df_den": np.nan, "pvalue": np.nan})
    out = pd.DataFrame(rows)
    tested = out["pvalue"].notna()
    out["pvalue_adj"] = np.nan
    out.loc[tested, "pvalue_adj"] = adjust(out.loc[tested, "pvalue"].to_numpy(), alpha_correction)
    return out


def _term_row(r, nets: Networks, ss_total: float) -> dict:
    """One term's quasi-F: its mean square over its expected value under the null, σ²_w plus the term × unit mean
    square (the term computed on every test-set unit: patients or images within patients) scaled as the test-set
    error of a contrast (analysis.networks), with Satterthwaite df. The term × unit mean square carries each
    configuration's networks as the term's sum of squares does, so unequal seeds need no harmonic-mean shortcut."""
    v, u = nets.variance, nets.units
    df_q = r.df * u.df
    q = u.kappa * r.ss_units / df_q if df_q > 0 else 0.0
    den, df_den = (float(x) for x in v.combination(1.0, q, df_q))
    f = (r.ss / r.df) / den if den > 0 and r.df > 0 else float("nan")
    p = float(sps.f.sf(f, r.df, df_den)) if np.isfinite(f) else float("nan")
    return {"term": " × ".join(factor_name(x) for x in r.term), "factors": list(r.term),
            "share": r.ss / ss_total if ss_total else np.nan, "ss": r.ss, "df": float(r.df), "F": f,
            "df_den": df_den, "pvalue": p}


def _design(cm: pd.DataFrame, terms: list[tuple[str, ...]]) -> np.ndarray:
    """Intercept plus treatment-coded dummy columns of every term (interactions as products of dummies)."""
    cols = [np.ones(len(cm))]
    dummies = {f: pd.get_dummies(cm[f], drop_first=True, dtype=float).to_numpy() for t in terms for f in t}
    for t in terms:
        block = dummies[t[0]]
        for f in t[1:]:
            block = (block[:, :, None] * dummies[f][:, None, :]).reshape(len(cm), -1)
        cols.append(block)
    return np.column_stack(cols)


def _rss(cm: pd.DataFrame, terms: list[tuple[str, ...]], extra: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Weighted residual sums of squares of `mean ~ terms` (weights = networks per configuration), and of the same
    model for every column of `extra` (configurations × columns) after it; and the model rank."""
    w = np.sqrt(cm["size"].to_numpy(float))
    x = _design(cm, terms) * w[:, None]
    y = cm["mean"].to_numpy(float)[:, None] if extra is None else np.column_stack([cm["mean"].to_numpy(float), extra])
    y = y * w[:, None]
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    return ((y - x @ coef) ** 2).sum(axis=0), int(rank)


def type2(cm: pd.DataFrame, terms: list[tuple[str, ...]], extra: np.ndarray | None = None) -> pd.DataFrame:
    """Type II sums of squares (each term after every term that does not contain it) of the weighted configuration
    means, as statsmodels' `anova_lm(typ=2)` computes them, but also for saturated designs (no residual left), where
    statsmodels refuses. Columns: term, ss, df, and ss_units: the same term's sum of squares summed over the columns
    of `extra` (configurations × test-set units: the term × unit interaction); attrs: ss_model, df_model."""
    rss_full, rank_full = _rss(cm, terms)
    rss_null, _ = _rss(cm, [])
    rows = []
    for t in terms:
        base = [u for u in terms if not set(t) <= set(u)]
        rss_without, rank_without = _rss(cm, base, extra)
        rss_with, rank_with = _rss(cm, base + [t], extra)
        diff = np.maximum(rss_without - rss_with, 0.0)
        rows.append({"term": t, "ss": float(diff[0]), "df": rank_with - rank_without, "ss_units": float(diff[1:].sum())})
    out = pd.DataFrame(rows)
    out.attrs.update(ss_model=max(0.0, float(rss_null[0] - rss_full[0])), df_model=rank_full - 1)
    return out
