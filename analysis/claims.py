"""Claims about the design, per metric, from the network-level analysis (the `guidelines.json` contract).

A claim is a dict with at least: metric, kind, subject, reference, estimate, ci_low, ci_high, p_adj, test, family,
n_networks, n_images, n_patients, population. Kinds:
- `factor_importance`: a factor (or two-way interaction) explains a share of the between-network variance; estimate
  = the largest level difference it makes (metric units); p from the quasi-F, Holm over the terms of the metric.
- `better` / `worse` / `equivalent` / `undecided`: subject against reference. Better/worse only when the contrast is
  significant in its family **and** |estimate| ≥ the metric's smallest effect; equivalent when the two one-sided
  tests put the difference inside ± that effect (Holm-adjusted TOST p); otherwise undecided.
- `best`: the configuration with the best mean, against the pixel-only baseline, with the configurations not
  distinguishable from it (`tied`).
- `depends`: the recommended level of a factor changes within a level of another factor (or between metrics).
- `insufficient_replication`: where each side of a claim's contrast rests on fewer than `min_seeds` networks
  (`networks_per_side`), what would have been better/worse/depends/best (`would_be`), and how many seeds the
  measured between-network SD asks for.
Families chosen after looking (the best configuration, a recommended level, the best level within a context) are
tested over every pair the choice could have made (analysis.simultaneous), so the selection cannot inflate them.
`population` says what a claim covers: "patients" (enough test patients to generalise over them) or
"these_test_patients" (fewer than `min_patients`: tested with the images of these patients as the error).
Estimates are subject − reference in the metric's unit (so "better" is negative for lower-is-better metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.claim import Claim
from analysis.cross_metric import best_disagreements, disagreements, mark_improving
from analysis.decide import plan_rest, with_plans
from analysis.factors import (configuration_cells, design_networks, importance, interaction_weights, level_pairs,
                              level_weights, levels, marginal_means, simple_weights)
from analysis.load import BASELINE, higher_is_better
from analysis.networks import contrasts, non_baseline, seeds_needed, tost
from analysis.psi_lambda import psi_versus_lambda
from analysis.pvalues import adjust
from analysis.simultaneous import describe, max_over_contrasts, max_over_pairs, simultaneous

RANDOM = {"patients": "patients random", "these_test_patients": "images of these test patients random"}


def t_test(population: str) -> str:
    return f"t (Satterthwaite df) on per-network means (networks = replicates, {RANDOM[population]})"


def f_test(population: str) -> str:
    return f"quasi-F on per-network means (networks = replicates, {RANDOM[population]})"


def _spec_default(name: str):
    """The default of a field of the spec's `analysis:` section (study.spec.AnalysisSpec: the only place defaults
    live)."""
    from study.spec import AnalysisSpec  # torch-free

    f = AnalysisSpec.model_fields[name]
    return f.default_factory() if f.default_factory else f.default


@dataclass(frozen=True)
class Settings:
    """What the claims need from the spec's `analysis:` section; the defaults are the spec's."""

    alpha: float = field(default_factory=lambda: _spec_default("alpha"))
    min_effect: dict = field(default_factory=dict)  # per metric; the rest from METRIC_INFO
    min_seeds: int = field(default_factory=lambda: _spec_default("min_seeds"))
    min_patients: int = field(default_factory=lambda: _spec_default("min_patients"))
    psi_min_effect: float = field(default_factory=lambda: _spec_default("psi_min_effect"))

    def effect(self, metric: str) -> float:
        from study.spec import MIN_EFFECT

        return float(self.min_effect.get(metric, MIN_EFFECT.get(metric, 0.0)))


def verdict(estimate: float, p_adj: float, p_equiv: float, delta: float, higher: bool, alpha: float) -> str:
    """better/worse (significant and at least `delta`), equivalent (TOST inside ± delta), else undecided."""
    if p_adj < alpha and abs(estimate) >= delta:
        return "better" if (estimate > 0) == higher else "worse"
    if p_equiv < alpha:
        return "equivalent"
    return "undecided"


def effective_networks(weights: dict[str, float], counts: pd.Series) -> float:
    """The networks each side of a contrast rests on: the n per side of a two-group comparison with the same
    between-network variance, 2·(Σ|w|/2)² / Σ(w²/n_c). A pair of configurations with n seeds each gives n; a level
    averaged over 6 configurations of n seeds gives 6n; one side with a single surviving seed drags it down."""
    w = {c: x for c, x in weights.items() if x}
    den = sum(x * x / counts.get(c, np.nan) for c, x in w.items())
    return float(2 * (sum(abs(x) for x in w.values()) / 2) ** 2 / den) if den > 0 else float("nan")


class MetricClaims:
    """Every claim of one metric; `tables` keeps the full contrast tables for stats/*.csv."""

    def __init__(self, per_image: pd.DataFrame, trials: pd.DataFrame, metric: str, s: Settings):
        self.metric, self.s = metric, s
        self.higher = higher_is_better(metric)
        self.delta = s.effect(metric)
        self.nets, self.factors = design_networks(per_image, metric, s.min_patients)
        v = self.nets.variance
        self.population = self.nets.population
        self.n = {"n_images": int(v.n_images), "n_patients": int(v.n_patients), "population": self.population}
        self.seeds = int(self.nets.config_counts.median())  # typical networks per configuration (a failed seed aside)
        self.claims: list[Claim] = []
        self.tables: dict[str, pd.DataFrame] = {}
        self.contrasts: dict[int, tuple] = {}  # claim position → (family row, weights): what more would decide it
        self.trials = trials

    def claim(self, kind: str, subject, reference, row, family: str, test: str | None = None,
              weights: list[Claim] | None = None, contrast: dict | None = None, **extra) -> dict:
        """One claim; `weights`: the contrasts it asserts, whose networks decide whether it is replicated;
        `contrast`: the one of `row` (default: the only one of `weights`)."""
        nets = min((effective_networks(w, self.nets.config_counts) for w in weights), default=float("nan")) \
            if weights else float("nan")
        c = Claim.of({"metric": self.metric, "kind": kind, "subject": subject, "reference": reference,
                      "estimate": float(row["estimate"]), "ci_low": float(row["ci_low"]),
                      "ci_high": float(row["ci_high"]), "p_adj": float(row["p_adj"]),
                      "test": test or t_test(self.population), "family": family, "n_networks": int(row["n_networks"]),
                      **self.n, "min_effect": self.delta, "networks_per_side": nets, **extra})
        self.contrasts[len(self.claims)] = (row, contrast or (weights[0] if weights and len(weights) == 1 else None))
        self.claims.append(c)
        return c

    def oriented_best(self, means: pd.Series) -> str:
        return str(means.idxmax() if self.higher else means.idxmin())

    def build(self) -> list[Claim]:
        if self.factors:
            self.factor_claims()
        self.best_claim()
        psi = psi_versus_lambda(self.nets, self.trials, self.s.psi_min_effect, self.s.alpha)
        if psi is not None:
            self.claims.append(Claim.of({**psi, "metric": self.metric, **self.n}))
        withheld = False
        for i, c in enumerate(self.claims):  # replication judged per claim, from the networks its contrasts use
            few = not c.get("networks_per_side", self.seeds) >= self.s.min_seeds - 0.5
            if c["kind"] in ("better", "worse", "depends", "best") and few:
                self.claims[i] = c.replace(would_be=c["kind"], kind="insufficient_replication")
                withheld = True
        self.claims = with_plans(self.claims, self.contrasts, self.nets, self.delta, self.s.min_seeds, self.trials)
        if withheld or self.seeds < self.s.min_seeds:
            self.claims.append(self.replication_claim())
        return self.claims

    def replication_claim(self) -> dict:
        v = self.nets.variance
        need = seeds_needed(v, self.delta, alpha=self.s.alpha)
        return Claim.of({"metric": self.metric, "kind": "insufficient_replication", "subject": "seeds per configuration",
                         "reference": f"≥ {self.s.min_seeds}", "estimate": float(v.sd_network), "ci_low": float("nan"),
                         "ci_high": float("nan"), "p_adj": float("nan"),
                         "test": "between-network SD of per-network means", "family": "none",
                         "n_networks": int(v.n_networks), **self.n, "min_effect": self.delta, "seeds": self.seeds,
                         "seeds_needed": need})

    def family(self, weights: list[Claim], reference) -> pd.DataFrame:
        """Simultaneous (max-t) p and CIs of the claimed contrasts against the family's reference; Holm TOST."""
        t = simultaneous(self.nets, weights, reference)
        t["p_equiv"] = adjust(tost(t["estimate"], t["se"], t["df"], self.delta), "holm") if len(t) else []
        return t

    # -- factors -------------------------------------------------------------------------------------------------
    def factor_claims(self) -> None:
        """Factor terms (quasi-F), each factor's levels against its recommended one, and where that recommendation
        changes. A level or depends claim needs its factor term (or interaction term) significant too (gatekeeping)."""
        cells = configuration_cells(self.nets, self.factors)
        imp = importance(self.nets, self.factors)
        self.tables["importance"] = imp.assign(metric=self.metric)
        sig = {tuple(sorted(r.factors)) for r in imp.itertuples() if r.pvalue_adj < self.s.alpha}
        rec = {f: self.oriented_best(marginal_means(self.nets, self.factors, f)) for f in self.factors}
        n_terms = int(imp["pvalue"].notna().sum())
        for r in imp[imp["pvalue"].notna()].itertuples():
            est = self.term_effect(cells, r.factors, rec)
            if est is not None:
                est["n_networks"] = len(non_baseline(self.nets).table)
                self.claim("factor_importance", r.term, None, {**est, "p_adj": r.pvalue_adj}, family=f"{self.metric}: "
                           f"factor terms (Holm over {n_terms})", test=f_test(self.population), share=float(r.share),
                           matters=bool(r.pvalue_adj < self.s.alpha and abs(est["estimate"]) >= self.delta),
                           factors=list(r.factors))
        self.level_claims(cells, rec, sig)
        self.depends_claims(cells, rec, sig)

    def level_claims(self, cells: pd.DataFrame, rec: dict[str, str], sig: set) -> None:
        """Every factor's levels against its recommended (best-mean) level: one family per metric, tested over all
        pairs of levels of every factor (the recommendation is a selection)."""
        rows = [(f, lv, level_weights(cells, f, rec[f], lv)) for f in self.factors for lv in levels(self.nets, f)
                if lv != rec[f]]
        rows = [r for r in rows if r[2]]
        if not rows:
            return
        pairs = [w for f in self.factors for w in level_pairs(cells, f)]
        draws = max_over_contrasts(self.nets, pairs)
        how = describe("levels", len(pairs), draws)
        fam = f"{self.metric}: levels of every factor against its recommended level ({how})"
        t = self.family([w for *_, w in rows], draws)
        self.tables["levels"] = t.assign(metric=self.metric, factor=[f for f, *_ in rows],
                                         a=[rec[f] for f, *_ in rows], b=[lv for _, lv, _ in rows], procedure=how)
        for (f, lv, w), row in zip(rows, t.to_dict("records")):
            kind = verdict(row["estimate"], row["p_adj"], row["p_equiv"], self.delta, self.higher, self.s.alpha)
            if kind in ("better", "worse") and (f,) not in sig:
                kind = "undecided"  # the factor's own term is not significant: no level claim (gatekeeping)
            p = row["p_adj"] if kind != "equivalent" else row["p_equiv"]
            self.claim(kind, f"{f}={rec[f]}", f"{f}={lv}", {**row, "p_adj": p}, fam,
                       test=f"{t_test(self.population)}; {how}", weights=[w], factor=f,
                       configurations=sorted(c for c, x in w.items() if x))

    def term_effect(self, cells: pd.DataFrame, factors: list[str], rec: dict) -> dict | None:
        """The largest level difference a term makes: best − worst level (main), or the largest change of the
        recommended-vs-worst contrast between two levels of the other factor (interaction)."""
        f = factors[0]
        means = marginal_means(self.nets, self.factors, f)
        worst = str(means.idxmin() if self.higher else means.idxmax())
        if len(factors) == 1:
            w = [level_weights(cells, f, rec[f], worst)]
        else:
            g = factors[1]
            gl = levels(self.nets, g)[:8]
            w = [interaction_weights(cells, f, rec[f], worst, g, g1, g2) for i, g1 in enumerate(gl) for g2 in gl[i + 1:]]
        w = [x for x in w if x]
        if not w:
            return None
        c = contrasts(self.nets, w)
        return c.iloc[int(np.argmax(np.abs(c["estimate"].to_numpy())))].to_dict()

    def depends_claims(self, cells: pd.DataFrame, rec: dict[str, str], sig: set) -> None:
        """Where the best level of a factor within a level of another factor is not the recommended one, and the
        interaction of the two is significant: one family per metric, over all pairs of levels in every context."""
        cands, pairs = [], []
        for f in self.factors:
            for g in self.factors:
                if g == f or tuple(sorted((f, g))) not in sig:
                    continue
                for gv in levels(self.nets, g):
                    sub = cells[cells[g] == gv]
                    means = self.nets.config_means.loc[sub.index].groupby(sub[f]).mean()
                    if rec[f] not in means.index or len(means) < 2:
                        continue
                    pairs += level_pairs(cells, f, g, gv)
                    b = self.oriented_best(means)
                    w = simple_weights(cells, f, b, rec[f], g, gv)
                    if b != rec[f] and w:
                        cands.append((f, g, gv, b, w))
        if not cands:
            return
        draws = max_over_contrasts(self.nets, pairs)
        how = describe("within", len(pairs), draws)
        fam = f"{self.metric}: best level within a level of another factor against the recommended level ({how})"
        t = self.family([w for *_, w in cands], draws)
        self.tables["depends"] = t.assign(metric=self.metric, factor=[c[0] for c in cands],
                                          context=[f"{g}={gv}" for _, g, gv, *_ in cands], a=[c[3] for c in cands],
                                          b=[rec[c[0]] for c in cands], procedure=how)
        for (f, g, gv, b, w), row in zip(cands, t.to_dict("records")):
            if verdict(row["estimate"], row["p_adj"], 1.0, self.delta, self.higher, self.s.alpha) == "better":
                self.claim("depends", f"{f}={b}", f"{f}={rec[f]}", row, fam, test=f"{t_test(self.population)}; {how}",
                           weights=[w], factor=f, on=g, context=f"{g}={gv}",
                           configurations=sorted(c for c, x in w.items() if x))

    # -- configurations ------------------------------------------------------------------------------------------
    def best_claim(self) -> None:
        """The best-mean configuration against every other, tested over all pairs of configurations."""
        means = self.nets.config_means
        if len(means) < 2:
            return
        best = self.oriented_best(means)
        others = [c for c in means.index if c != best]
        draws = max_over_pairs(self.nets, list(means.index))
        how = describe("pairs", len(means) * (len(means) - 1) // 2, draws)
        fam = f"{self.metric}: configurations against the best ({how})"
        weights = [{best: 1.0, c: -1.0} for c in others]
        t = self.family(weights, draws)
        kinds = [verdict(r["estimate"], r["p_adj"], r["p_equiv"], self.delta, self.higher, self.s.alpha)
                 for r in t.to_dict("records")]
        t = t.assign(metric=self.metric, a=best, b=others, verdict=kinds, procedure=how)
        self.tables["vs_best"] = t
        tied = [c for c, k in zip(others, kinds) if k != "better"]
        ref = BASELINE if BASELINE in others else others[int(np.argmax([k != "better" for k in kinds]))]
        row = t[t["b"] == ref].iloc[0].to_dict()
        beaten = [w for w, k in zip(weights, kinds) if k == "better"] or [weights[others.index(ref)]]
        self.claim("best", best, ref, row, fam, test=f"{t_test(self.population)}; {how}", weights=beaten, tied=tied,
                   contrast=weights[others.index(ref)], others=others, mean=float(means[best]),
                   configurations=[best, ref])


def study_claims(per_image: pd.DataFrame, trials: pd.DataFrame, metrics: list[str], s: Settings,
                 improving: dict[str, float] | None = None) -> tuple[list[Claim], dict[str, pd.DataFrame], dict]:
    """Claims of every metric, cross-metric disagreements, what more would decide the open ones (analysis.decide),
    and still-improving marks; the contrast tables; and per metric the per-network analysis they rest on."""
    claims, tables, nets = [], {}, {}
    for m in metrics:
        mc = MetricClaims(per_image, trials, m, s)
        claims += mc.build()
        nets[m] = mc.nets
        for name, t in mc.tables.items():
            tables.setdefault(name, []).append(t)
    claims += disagreements(claims) + best_disagreements(claims, tables.get("vs_best", []))
    claims = mark_improving(plan_rest(claims, tables.get("vs_best", []), nets, s, trials), improving or {})
    return claims, {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, nets
