"""Written design rules from the tests, each citing its evidence.

A rule is drawn only from a comparison that is significant after Holm adjustment (p_Holm < α) *and* not negligible
(|rank-biserial r| ≥ MIN_EFFECT). Sources, per metric:
- the omnibus Friedman test (no rule at all when it is not significant);
- the best mean rank, and which configurations Wilcoxon–Holm cannot separate from it;
- each configuration against the pixel-only baseline (pairwise Wilcoxon–Holm);
- factor effects (analysis.effects): a main effect when significant; simple effects (within one level of another
  factor) where the interaction with that factor is significant or the main effect is not; significant interactions.
"""

from __future__ import annotations

import pandas as pd

from analysis.load import BASELINE, HIGHER_IS_BETTER
from analysis.stats import p_clause

MIN_EFFECT = 0.3  # |rank-biserial r| below this is called negligible (a common 'medium' threshold)
NAMES = {"loss": "loss", "feature_level": "feature level", "pretraining": "pretraining", "lam": "λ", "weighting": "loss weighting"}


def _evidence(metric: str, diff: float, lo: float, hi: float, p: float, r: float, n: int, unit: str = "images") -> str:
    ci = f" [{lo:+.4g}, {hi:+.4g}]" if pd.notna(lo) and pd.notna(hi) else ""
    return f"Δ{metric} {diff:+.4g}{ci}, {p_clause(p, 'p_Holm')}, r = {abs(r):.2f}, n = {n} {unit}"


def _significant(row, alpha: float, min_effect: float) -> bool:
    return row.pvalue_adj < alpha and abs(row.effect_size) >= min_effect


def _oriented(row, higher: bool):
    """(winner, loser, Δ, lo, hi, r) with Δ = winner − loser in the metric's units."""
    a_wins = (row.median_diff > 0) == higher if row.median_diff != 0 else (row.effect_size > 0) == higher
    if a_wins:
        return row.a, row.b, row.median_diff, row.ci_low, row.ci_high, row.effect_size
    return row.b, row.a, -row.median_diff, -row.ci_high, -row.ci_low, -row.effect_size


def _context(ctx: str) -> str:
    if ctx == "all":
        return "Overall (averaged over the other factors)"
    factor, level = ctx.split("=", 1)
    return f"With {NAMES.get(factor, factor)} = {level}"


def effect_rules(metric: str, effects: pd.DataFrame, alpha: float, min_effect: float) -> list[str]:
    if effects is None or effects.empty:
        return []
    higher = HIGHER_IS_BETTER.get(metric, True)
    rules = []
    inter = effects[effects["kind"] == "interaction"]
    sig_inter = {tuple(r.factor.split(" × ")) for r in inter.itertuples() if _significant(r, alpha, min_effect)}
    for r in inter.itertuples():
        if _significant(r, alpha, min_effect):
            f, g = r.factor.split(" × ")
            rules.append(f"{metric}: the {NAMES.get(f, f)} effect ({r.a}) depends on {NAMES.get(g, g)} "
                         f"({r.b}: {_evidence(metric, r.median_diff, r.ci_low, r.ci_high, r.pvalue_adj, r.effect_size, r.n)}).")
    for r in effects[effects["kind"] == "main"].itertuples():
        simple = effects[(effects["kind"] == "simple") & (effects["factor"] == r.factor) & (effects["a"] == r.a)
                         & (effects["b"] == r.b)]
        # a main effect that some significant simple effect reverses would mislead: say only the simple effects
        reversed_ = any(_significant(s, alpha, min_effect) and (s.median_diff > 0) != (r.median_diff > 0)
                        for s in simple.itertuples())
        main_sig = _significant(r, alpha, min_effect) and not reversed_
        if main_sig:
            w, l_, d, lo, hi, rr = _oriented(r, higher)
            rules.append(f"{metric}: {_context('all')} prefer {NAMES.get(r.factor, r.factor)} {w} over {l_} "
                         f"({_evidence(metric, d, lo, hi, r.pvalue_adj, rr, r.n)}).")
        for s in simple.itertuples():
            g = s.context.split("=", 1)[0]
            if main_sig and (r.factor, g) not in sig_inter and (g, r.factor) not in sig_inter:
                continue  # the main effect already says it
            if _significant(s, alpha, min_effect):
                w, l_, d, lo, hi, rr = _oriented(s, higher)
                rules.append(f"{metric}: {_context(s.context)} prefer {NAMES.get(s.factor, s.factor)} {w} over {l_} "
                             f"({_evidence(metric, d, lo, hi, s.pvalue_adj, rr, s.n)}).")
    return rules


def as_markdown(rules: list[str]) -> str:
    """Rules grouped under one heading per metric (rules start with 'metric: ')."""
    groups: dict[str, list[str]] = {}
    for r in rules:
        head, _, text = r.partition(": ")
        key = head if text and " " not in head else ""
        groups.setdefault(key, []).append(text if key else r)
    out = []
    for key, items in groups.items():
        out += ([f"### {key}", ""] if key else ["### All metrics", ""]) + [f"- {i}" for i in items] + [""]
    return "\n".join(out)


def guidelines(numbers: dict, alpha: float = 0.05, min_effect: float = MIN_EFFECT) -> list[str]:
    """Rules for every metric in `numbers` (as built by analysis.report), then where the metrics disagree."""
    rules, best = [], {}
    for metric, n in numbers.items():
        higher = HIGHER_IS_BETTER.get(metric, True)
        fr = n.get("friedman")
        if fr is not None and fr["pvalue"] >= alpha:
            rules.append(f"{metric}: no configuration differs (Friedman {p_clause(fr['pvalue'])} ≥ {alpha}); "
                         f"no rule is drawn.")
            continue
        pw = n.get("pairwise")
        b = n["best"]
        tied = []
        if pw is not None:
            for row in pw.itertuples(index=False):
                if b in (row.a, row.b) and not _significant(row, alpha, min_effect):
                    tied.append(row.b if row.a == b else row.a)
        best[metric] = b
        verdict = (f"not separated from {', '.join(tied)}" if tied
                   else "better than every other configuration (Wilcoxon–Holm)")
        rules.append(f"{metric}: best mean rank — {b} (mean {n['means'][b]:.4g}; low-dose input "
                     f"{n['input_mean']:.4g}); {verdict}.")
        if pw is not None:
            for row in pw.itertuples(index=False):
                if BASELINE not in (row.a, row.b) or not _significant(row, alpha, min_effect):
                    continue
                w, l_, d, lo, hi, rr = _oriented(row, higher)
                other = l_ if w == BASELINE else w
                rules.append(f"{metric}: {other} is {'better' if w == other else 'worse'} than {BASELINE} "
                             f"({_evidence(metric, d if w == other else -d, lo if w == other else -hi, hi if w == other else -lo, row.pvalue_adj, rr, row.n)}).")
        rules += effect_rules(metric, n.get("effects"), alpha, min_effect)
    if len(set(best.values())) > 1:
        rules.append("Metrics disagree on the best configuration: " + "; ".join(f"{m}: {b}" for m, b in best.items()) + ".")
    rules.append(f"Rules are drawn only from Holm-adjusted p < {alpha} with |r| ≥ {min_effect} (rank-biserial); "
                 f"Δ is the median per-image difference (winner − loser; for better-vs-baseline lines, configuration − "
                 f"baseline) with its 95% bootstrap CI.")
    return rules
