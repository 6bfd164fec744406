"""Adaptive seeds: the stage-2 decision of a two-stage study (`adaptive:` in the spec). Pure: tables in, a decision
out; no Ray, MLflow or SLURM.

Stage 1 trains every configuration `min_seeds` times. Then, on the stage-1 networks of one metric:

- **How many seeds (an internal pilot, variance only).** The between-network variance σ²_w and the test-set term T
  of the per-network analysis give the seeds n* per configuration at which the report's own family test (max-t over
  all pairs of the k configurations; for a balanced design its critical value is the studentized range
  q(1 − α₂; k, df)/√2) separates a difference of the smallest effect δ with the wanted power
  (noncentral t, SE² = 2σ²_w/n + 2T). σ²_w is taken at its upper `variance_confidence` (80%) confidence bound
  (scaled χ² with the stage-1 df): the plain internal pilot loses power whenever stage 1 happens to underestimate
  the variance, and the bound buys that power back with a few more seeds. The estimated effects play no part in n*.
- **Which configurations (a screen that spends α₁ of α).** A configuration whose stage-1 difference from the
  leader (the best stage-1 mean) is both ≥ δ and separated at α₁ by the report's max-t over all pairs is decided
  (worse than the leader) and keeps its stage-1 seeds; every other configuration, the leader included, gets n*.
- **The final analysis spends the rest, α₂ = α − α₁.** The screen is a look at the effects, so the α it may spend
  is stated in advance (Bonferroni spending over the two looks): a false claim needs a false screen (≤ α₁) or a
  false final claim (≤ α₂). The report analyses the whole study once, at α₂.
- **Ceiling and futility.** When no number of seeds up to `max_seeds` reaches the power, stage 2 goes to
  `max_seeds` (the most the user allows buys the most power), unless the test set's own variation stops it: when
  even infinitely many seeds (SE² → 2T) fall short of the power, stage 2 adds nothing and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.claims import MetricClaims, Settings


def screen_alpha(alpha: float, stated: float | None) -> float:
    """α₁, the share of α the stage-1 screen spends (default α/5)."""
    return float(stated) if stated is not None else alpha / 5


def final_alpha(alpha: float, stated: float | None) -> float:
    """α₂ = α − α₁, the level of the final analysis of an adaptive study."""
    return alpha - screen_alpha(alpha, stated)


def pair_power(n: int, k: int, net_var: float, test_term: float, delta: float, alpha: float) -> float:
    """Power of the max-t over all pairs of k configurations with n networks each to separate a difference δ."""
    df = max(k * (n - 1), 1)
    se = np.sqrt(2 * net_var / n + 2 * test_term)
    if not se > 0:
        return 1.0
    crit = sps.studentized_range.ppf(1 - alpha, max(k, 2), df) / np.sqrt(2)
    return float(sps.nct.sf(crit, df, abs(delta) / se))


def variance_bound(net_var: float, df: int, confidence: float) -> float:
    """The upper `confidence` bound of a variance estimated with df degrees of freedom (scaled χ²)."""
    if not net_var > 0 or df < 1:
        return net_var
    return float(net_var * df / sps.chi2.ppf(1 - confidence, df))


def limit_power(k: int, test_term: float, delta: float, alpha: float) -> float:
    """The power with infinitely many seeds: only the test set's variation (SE² = 2T) is left."""
    se = np.sqrt(2 * test_term)
    if not se > 0:
        return 1.0
    return float(sps.norm.sf(sps.studentized_range.ppf(1 - alpha, max(k, 2), 10_000) / np.sqrt(2) - abs(delta) / se))


def seeds_for(k: int, net_var: float, test_term: float, delta: float, alpha: float, power: float, lo: int,
              hi: int) -> tuple[int | None, float]:
    """(the fewest seeds in lo…hi reaching `power`, or None; the power at that number, or at `hi`)."""
    p = 0.0
    for n in range(lo, hi + 1):
        p = pair_power(n, k, net_var, test_term, delta, alpha)
        if p >= power:
            return n, p
    return None, p


@dataclass(frozen=True)
class StageTwo:
    """The stage-2 decision: seeds per configuration (total, stage 1's included) and why."""

    metric: str
    leader: str
    seeds_needed: int | None  # n*: None when max_seeds does not reach the power
    power: float  # the design's power at n* (or at max_seeds when none reaches it)
    seeds: dict[str, int]  # configuration → networks it will have
    why: dict[str, str]  # configuration → reason
    variance: dict = field(default_factory=dict)  # σ²_w, T, k, δ, α₁, α₂ it rests on

    def added(self, stage1: dict[str, int]) -> dict[str, int]:
        """configuration → seeds stage 2 adds."""
        return {c: n - stage1.get(c, 0) for c, n in self.seeds.items() if n > stage1.get(c, 0)}

    def as_json(self) -> dict:
        return asdict(self)


VARIANCE_CONFIDENCE = 0.8


def stage_two(per_image: pd.DataFrame, trials: pd.DataFrame, metric: str, s: Settings, *, power: float,
              min_seeds: int, max_seeds: int, alpha_screen: float | None = None,
              variance_confidence: float = VARIANCE_CONFIDENCE) -> StageTwo:
    """Seeds per configuration after stage 1 (module docstring); `s.alpha` is the study's α."""
    a1, a2 = screen_alpha(s.alpha, alpha_screen), final_alpha(s.alpha, alpha_screen)
    mc = MetricClaims(per_image, trials, metric, s)
    v, delta = mc.nets.variance, s.effect(metric)
    counts = mc.nets.config_counts
    k = len(counts)
    net_var, test = float(np.nan_to_num(v.ms_within)), float(v.test_term)
    df = int(counts.sum() - k)
    planned = variance_bound(net_var, df, variance_confidence)
    n_star, p = seeds_for(k, planned, test, delta, a2, power, min_seeds, max_seeds)
    ceiling = limit_power(k, test, delta, a2)
    if n_star is None and ceiling >= power:
        n_star = max_seeds  # the most seeds allowed: short of the power, but the most it can buy
    facts = {"net_var": net_var, "net_var_planned": planned, "variance_confidence": variance_confidence, "df": df,
             "test_term": test, "power_limit": ceiling, "configurations": k, "delta": delta, "alpha": s.alpha,
             "alpha_screen": a1, "alpha_final": a2, "power_target": power}
    mc.best_claim()
    vs = mc.tables.get("vs_best")
    leader = str(vs["a"].iloc[0]) if vs is not None and len(vs) else str(counts.index[0])
    seeds = {c: int(n) for c, n in counts.items()}
    if n_star is None or n_star <= min_seeds:
        text = (f"futile: the test set alone caps the power at {ceiling:.2f} < {power:g} however many seeds "
                f"(at {max_seeds}: {p:.2f})" if n_star is None else f"stage 1's {min_seeds} seeds already give power {p:.2f}")
        return StageTwo(metric, leader, n_star, p, seeds, {c: text for c in seeds}, facts)
    why = {}
    decided = _screened(vs, delta, a1)
    for c in seeds:
        if c in decided:
            why[c] = f"decided at stage 1: {decided[c]}"
        else:
            seeds[c] = max(seeds[c], n_star)
            why[c] = "the leader" if c == leader else "not separated from the leader at stage 1"
    return StageTwo(metric, leader, n_star, p, seeds, why, facts)


def _screened(vs: pd.DataFrame | None, delta: float, a1: float) -> dict[str, str]:
    """configuration → why it is decided: its difference from the leader ≥ δ and separated at α₁."""
    if vs is None:
        return {}
    out = {}
    for r in vs.itertuples():
        if r.p_adj < a1 and abs(r.estimate) >= delta:
            out[str(r.b)] = f"{abs(r.estimate):.3g} below the leader {r.a} (max-t p_adj {r.p_adj:.2g} < α₁ = {a1:g})"
    return out
