"""Written rules from the tests: only from Holm-significant comparisons with a non-negligible effect."""

from __future__ import annotations

from analysis.load import BASELINE, HIGHER_IS_BETTER
from analysis.stats import p_clause

MIN_EFFECT = 0.3  # |rank-biserial r| below this is called negligible (a common 'medium' threshold)


def guidelines(numbers: dict, alpha: float = 0.05, min_effect: float = MIN_EFFECT) -> list[str]:
    """Rules per metric: best configuration, and each configuration's verdict against the pixel-only baseline."""
    rules = []
    best = {}
    for metric, n in numbers.items():
        higher = HIGHER_IS_BETTER.get(metric, True)
        pw = n.get("pairwise")
        best[metric] = n["best"]
        fr = n.get("friedman")
        if fr is not None and fr["pvalue"] >= alpha:
            rules.append(f"{metric}: no configuration differs (Friedman p = {format_p(fr['pvalue'])} ≥ {alpha}); "
                         f"no rule is drawn.")
            continue
        rules.append(f"{metric}: best mean rank — {n['best']} (mean {n['means'][n['best']]:.4g}; "
                     f"low-dose input {n['input_mean']:.4g}).")
        if pw is None:
            continue
        for row in pw.itertuples(index=False):
            if BASELINE not in (row.a, row.b):
                continue
            other = row.b if row.a == BASELINE else row.a
            sign = 1 if row.a == other else -1  # effect/diff are a − b
            diff, r = sign * row.median_diff, sign * row.effect_size
            better = (diff > 0) == higher
            if row.pvalue_adj < alpha and abs(r) >= min_effect:
                rules.append(f"{metric}: {other} is {'better' if better else 'worse'} than pixel-only "
                             f"(median Δ {diff:+.4g}, {p_clause(row.pvalue_adj, 'p_Holm')}, r = {r:+.2f}, n = {row.n} images).")
    if len(set(best.values())) > 1:
        rules.append("Metrics disagree on the best configuration: " + "; ".join(f"{m}: {b}" for m, b in best.items()) + ".")
    rules.append(f"Rules are drawn only from Holm-adjusted p < {alpha} with |r| ≥ {min_effect}.")
    return rules
