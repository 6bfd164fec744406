"""Design factors on the per-network means: how much each factor matters and contrasts between its levels.

- `importance`: Type II sums of squares of the factors' main effects and two-way interactions (statsmodels OLS on the
  per-network means, pixel-only baseline left out), each tested with a quasi-F whose denominator is the expected
  mean square under the null (σ²_w + n_seeds·T, see analysis.networks), Holm over the terms of a metric. `share` is
  the term's sum of squares over the total between-network sum of squares (η²); what no term explains is split into
  higher-order interactions and between-seed (network) variation.
- `level_weights`, `simple_weights`, `interaction_weights`: the configuration weights of a level contrast (a − b
  averaged over the combinations of the other factors where both levels exist), within one level of another factor,
  or the change of that contrast between two levels of a second factor.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.effects import _label, _sort_key, design_factors, with_weighting
from analysis.networks import Networks, network_means, non_baseline
from analysis.stats import adjust

NAMES = {"loss": "loss", "feature_level": "feature level", "pretraining": "pretraining", "lam": "λ",
         "weighting": "loss weighting"}


def design_networks(per_image: pd.DataFrame, metric: str) -> tuple[Networks, list[str]]:
    """Per-network means with the design factors as string columns (λ and Ψ target merged where both occur)."""
    x = with_weighting(per_image)
    factors = design_factors(per_image)
    nets = network_means(x, metric, factors)
    table = nets.table.copy()
    for f in factors:
        table[f] = table[f].map(_label)
    return Networks(metric, table, nets.variance), factors


def levels(nets: Networks, factor: str) -> list[str]:
    return sorted(non_baseline(nets).table[factor].dropna().unique(), key=_sort_key)


def _cells(nets: Networks, factors: list[str]) -> pd.DataFrame:
    """One row per configuration with its factor levels (baseline excluded)."""
    return non_baseline(nets).table.drop_duplicates("configuration").set_index("configuration")[factors]


def level_weights(cells: pd.DataFrame, factor: str, a: str, b: str) -> dict[str, float]:
    """Weights of 'level a − level b of `factor`', averaged over the other factors' combinations holding both."""
    others = [c for c in cells.columns if c != factor]
    pairs = []
    groups = cells.groupby(others, dropna=False) if others else [((), cells)]
    for _, g in groups:
        ca, cb = g.index[g[factor] == a], g.index[g[factor] == b]
        if len(ca) and len(cb):
            pairs.append((ca[0], cb[0]))
    return {c: w / len(pairs) for ca, cb in pairs for c, w in ((ca, 1.0), (cb, -1.0))} if pairs else {}


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
    cells = _cells(nets, factors)
    return cm.loc[cells.index].groupby(cells[factor]).mean()


def importance(nets: Networks, factors: list[str], alpha_correction: str = "holm") -> pd.DataFrame:
    """Share of between-network variance and quasi-F test per factor and two-way interaction (module docstring)."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    t = non_baseline(nets).table
    cols = ["term", "share", "ss", "df", "F", "df_den", "pvalue", "pvalue_adj"]
    if not factors or len(t) < 3:
        return pd.DataFrame(columns=cols)
    d = t[["y", "configuration", *factors]].copy()
    alias = {f: f"f{i}" for i, f in enumerate(factors)}
    d = d.rename(columns=alias)
    terms = [f"C({alias[f]})" for f in factors]
    formula = "y ~ " + (f"({' + '.join(terms)})**2" if len(terms) > 1 else terms[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.ols(formula, d).fit()
        table = anova_lm(fit, typ=2)
    ss_total = float(((d["y"] - d["y"].mean()) ** 2).sum())
    within = float(((d["y"] - d.groupby("configuration")["y"].transform("mean")) ** 2).sum())
    df_within = len(d) - d["configuration"].nunique()
    v = nets.variance
    den, df_den = v.combination(1.0, v.n_seeds)
    back = {a: f for f, a in alias.items()}
    rows = []
    for name, r in table.drop(index="Residual").iterrows():
        label = " × ".join(NAMES.get(back[p[2:-1]], back[p[2:-1]]) for p in name.split(":"))
        f = (r["sum_sq"] / r["df"]) / den if den > 0 and r["df"] > 0 else float("nan")
        p = float(sps.f.sf(f, r["df"], df_den)) if np.isfinite(f) else float("nan")
        rows.append({"term": label, "key": name, "share": r["sum_sq"] / ss_total if ss_total else np.nan,
                     "ss": r["sum_sq"], "df": r["df"], "F": f, "df_den": float(df_den), "pvalue": p})
    resid = float(table.loc["Residual", "sum_sq"])
    rows.append({"term": "higher-order interactions", "key": "", "share": max(0.0, resid - within) / ss_total if ss_total else np.nan,
                 "ss": max(0.0, resid - within), "df": float(table.loc["Residual", "df"]) - df_within, "F": np.nan,
                 "df_den": np.nan, "pvalue": np.nan})
    rows.append({"term": "between seeds (network luck)", "key": "", "share": within / ss_total if ss_total else np.nan,
                 "ss": within, "df": float(df_within), "F": np.nan, "df_den": np.nan, "pvalue": np.nan})
    out = pd.DataFrame(rows)
    tested = out["pvalue"].notna()
    out["pvalue_adj"] = np.nan
    out.loc[tested, "pvalue_adj"] = adjust(out.loc[tested, "pvalue"].to_numpy(), alpha_correction)
    out["factors"] = [[back[p[2:-1]] for p in k.split(":")] if k else [] for k in out["key"]]
    return out.drop(columns="key")


def level_pairs(levels_: list[str], best: str) -> list[tuple[str, str]]:
    """The recommended level against each other level."""
    return [(best, lv) for lv in levels_ if lv != best]


def factor_pairs(factors: list[str]) -> list[tuple[str, str]]:
    return list(combinations(factors, 2))
