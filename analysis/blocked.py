"""The image-blocked analysis of one metric (what paper 1 did: seeds averaged, test images as blocks), computed once
into a `Blocked` record: summary, Friedman, pairwise Wilcoxon–Holm, post-hoc matrices, per-seed Friedman, the mixed
model, factor effects and the power table. It describes these networks on these images; the guidelines do not rest
on it. Rendering (tables, figures, Markdown) is analysis.sections."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.effects import cell_means, design_factors, factor_effects
from analysis.load import BASELINE, block_key, block_scores, higher_is_better, input_scores, seed_scores
from analysis.mixed import mixed_model
from analysis.omnibus import FriedmanResult, conover, friedman, mean_ranks, nemenyi, nemenyi_cd, pvalue_matrix
from analysis.signed_rank import pairwise_wilcoxon, power_n

ALPHA = 0.05  # the default; a study's `analysis.alpha` is passed in
MAX_ALL_PAIRS = 30  # above this many configurations the pairwise family is "each vs the best and vs pixel-only"
FIGURE_TOP = 20  # configurations in the box plot and CD diagram of a large study (best by mean rank + baseline)


@dataclass(frozen=True)
class Blocked:
    """One metric's image-blocked results (every number the report's per-metric section shows)."""

    metric: str
    scores: pd.DataFrame  # image × configuration, seeds averaged
    dropped: int  # images left out for lacking a configuration
    reference: pd.Series  # the low-dose input's score per image
    summary: pd.DataFrame  # configuration, mean, sd, median, mean_rank (best first)
    friedman: FriedmanResult | None
    shown: list[str]  # configurations in the box plot and CD diagram
    pairwise: pd.DataFrame | None = None
    family: str = ""
    matrices: dict[str, pd.DataFrame] = field(default_factory=dict)  # nemenyi / conover
    cd: float | None = None
    cd_matrix: pd.DataFrame | None = None  # the p-values the CD diagram's bars follow
    cd_test: str = ""
    per_seed: pd.DataFrame | None = None
    mixed: dict | None = None
    mixed_skipped: int | None = None  # k when the mixed model was skipped for too many configurations
    effects: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None  # feature level × pretraining cell means (interaction plot)
    cells_panel: str | None = None
    baseline_mean: float | None = None
    power: pd.DataFrame | None = None
    power_effect: float | None = None
    alpha: float = ALPHA

    @property
    def best(self) -> str:
        return str(self.summary["configuration"].iloc[0])

    @property
    def order(self) -> list[str]:
        return list(self.summary["configuration"])

    def numbers(self) -> dict:
        """The numbers of summary.json (and of Methods, the LaTeX results table and the examples' order)."""
        out = {"n_images": int(len(self.scores)), "k": int(self.scores.shape[1]), "best": self.best,
               "input_mean": float(self.reference.mean()), "input_sd": float(self.reference.std(ddof=1)),
               "means": dict(zip(self.summary["configuration"], self.summary["mean"])),
               "friedman": self.friedman.__dict__ if self.friedman else None}
        if self.pairwise is not None:
            out["pairwise"] = self.pairwise
        if self.cd is not None:
            out["nemenyi_cd"] = self.cd
        out["effects"] = self.effects
        return out


def summary_table(scores: pd.DataFrame, higher: bool) -> pd.DataFrame:
    ranks = mean_ranks(scores, higher)
    return pd.DataFrame({
        "configuration": ranks.index,
        "mean": [scores[c].mean() for c in ranks.index],
        "sd": [scores[c].std(ddof=1) for c in ranks.index],
        "median": [scores[c].median() for c in ranks.index],
        "mean_rank": ranks.to_numpy(),
    })


def figure_configurations(order: list[str]) -> list[str]:
    """The configurations (best first) in the box plot and CD diagram: all, or in a large study the FIGURE_TOP best
    and the pixel-only baseline."""
    if len(order) <= MAX_ALL_PAIRS:
        return order
    return order[:FIGURE_TOP] + ([BASELINE] if BASELINE in order[FIGURE_TOP:] else [])


def pairwise_family(order: list[str], best: str) -> tuple[list[tuple[str, str]] | None, str]:
    """The pairs of the Wilcoxon–Holm family (None: all pairs) and how the report names the family."""
    k = len(order)
    if k <= MAX_ALL_PAIRS:
        return None, f"all {k * (k - 1) // 2} pairs"
    # all k(k − 1)/2 pairs would be a family too large to read or to keep power in
    pairs = [(best, c) for c in order if c != best]
    pairs += [(c, BASELINE) for c in order if BASELINE in order and c not in (best, BASELINE)]
    return pairs, (f"each configuration against the best ({best}) and against {BASELINE}: {len(pairs)} pairs "
                   f"(with k = {k}, all {k * (k - 1) // 2} pairs are in the Conover matrix)")


def blocked(per_image: pd.DataFrame, metric: str, power: bool = False, power_effect: float | None = None,
            alpha: float = ALPHA) -> Blocked:
    """The image-blocked analysis of `metric` at level `alpha` (module docstring)."""
    scores, dropped = block_scores(per_image, metric)
    ref = input_scores(per_image, metric).loc[scores.index]
    summary = summary_table(scores, higher_is_better(metric))
    order = list(summary["configuration"])
    parts: dict = {"friedman": None}
    if scores.shape[1] >= 3 and len(scores) >= 2:
        parts["friedman"] = friedman(scores)
    shown = figure_configurations(order)
    if scores.shape[1] >= 2 and len(scores) >= 2:
        parts |= _pairwise(scores, summary, shown, alpha)
    if per_image["seed"].nunique() > 1 or len(per_image) > len(scores):
        parts |= _sensitivity(per_image, metric)
    parts |= _effects(per_image, metric)
    if power:
        parts |= {"power": power_table(scores, power_effect, alpha), "power_effect": power_effect}
    return Blocked(metric, scores, dropped, ref, summary, shown=shown, alpha=alpha, **parts)


def _pairwise(scores: pd.DataFrame, summary: pd.DataFrame, shown: list[str], alpha: float) -> dict:
    order = list(summary["configuration"])
    pairs, family = pairwise_family(order, order[0])
    pw = pairwise_wilcoxon(scores, "holm", pairs=pairs)
    out = {"pairwise": pw, "family": family, "matrices": {}}
    k = scores.shape[1]
    if k < 3:
        return out
    tests = [("conover", conover)] if k > MAX_ALL_PAIRS else [("nemenyi", nemenyi), ("conover", conover)]
    out["matrices"] = {name: fn(scores) for name, fn in tests}  # Nemenyi: ~0.1 ms a pair, skipped above 30
    if pairs is None:
        out["cd_matrix"], out["cd_test"] = pvalue_matrix(pw), "Wilcoxon–Holm"
    else:
        out["cd_matrix"], out["cd_test"] = out["matrices"]["conover"].loc[shown, shown], "Conover–Holm"
    out["cd"] = nemenyi_cd(k, len(scores), alpha)
    return out


def _sensitivity(per_image: pd.DataFrame, metric: str) -> dict:
    """Per-seed Friedman and a mixed model over all (image, seed) rows, beside the seed-averaged main result."""
    rows = []
    for s in sorted(per_image["seed"].dropna().unique()):
        sc = seed_scores(per_image, metric, s)
        if sc.shape[1] >= 3 and len(sc) >= 2:
            fr = friedman(sc)
            rows.append({"seed": s, "k": fr.k, "n": fr.n_blocks, "chi2": fr.statistic, "pvalue": fr.pvalue,
                         "kendall_w": fr.kendall_w, "best": mean_ranks(sc, higher_is_better(metric)).index[0],
                         "line": fr.line()})
    out: dict = {"per_seed": pd.DataFrame(rows)}
    k = per_image["configuration"].nunique()
    if k > MAX_ALL_PAIRS:
        return out | {"mixed_skipped": k}
    return out | {"mixed": mixed_model(per_image.assign(block=per_image[block_key(per_image)]), metric,
                                       reference=BASELINE)}


def _effects(per_image: pd.DataFrame, metric: str) -> dict:
    factors = design_factors(per_image)
    if not factors:
        return {}
    out: dict = {"effects": factor_effects(per_image, metric)}
    if "feature_level" in factors and "pretraining" in factors:
        base = per_image[per_image["configuration"] == BASELINE]
        out |= {"cells": cell_means(per_image, metric, factors),
                "cells_panel": next((f for f in ("weighting", "lam", "psi_target") if f in factors), None),
                "baseline_mean": float(base.groupby(block_key(base))[metric].mean().mean()) if len(base) else None}
    return out


def power_table(scores: pd.DataFrame, effect: float | None = None, alpha: float = ALPHA) -> pd.DataFrame | None:
    """Images needed for 80% power per configuration against the pixel-only baseline, from the observed paired
    differences (None without a baseline)."""
    if BASELINE not in scores or scores.shape[1] < 2:
        return None
    m = scores.shape[1] * (scores.shape[1] - 1) // 2
    rows = []
    for c in scores.columns:
        if c == BASELINE:
            continue
        d = scores[c] - scores[BASELINE]
        rows.append({"configuration": c, "mean_diff": float(d.mean()), "sd_diff": float(d.std(ddof=1)),
                     "n_needed": power_n(d, effect, alpha=alpha),
                     "n_needed_holm_bound": power_n(d, effect, alpha=alpha / m)})
    return pd.DataFrame(rows)


def posthoc_agreement(b: Blocked) -> list[str]:
    """Per post-hoc matrix: how many pairs differ, and how often it agrees with Wilcoxon–Holm on its pairs."""
    pw, k = b.pairwise, b.scores.shape[1]
    wil = (pw["pvalue_adj"] < b.alpha).to_numpy()
    out = []
    for name, m in b.matrices.items():
        sig = m.to_numpy()[[m.index.get_loc(a) for a in pw["a"]], [m.columns.get_loc(c) for c in pw["b"]]] < b.alpha
        n_sig = int((m.to_numpy()[np.triu(np.ones((k, k), bool), 1)] < b.alpha).sum())
        out.append(f"{name.capitalize()}: {n_sig} of {k * (k - 1) // 2} pairs differ; agrees with Wilcoxon–Holm on "
                   f"{int((sig == wil).sum())} of its {len(pw)}")
    return out
