"""What more would decide an open claim (issue 29): per undecided (or insufficiently replicated) claim, the seeds per
configuration at which its contrast would be decided at the measured estimate and variance, and the trial-hours the
extra trials cost.

A claim is decided when its family's interval separates it — |estimate| > h, the interval's half-width at the
report's α, and |estimate| ≥ δ (`analysis.min_effect`): better or worse — or puts it inside ± δ — |estimate| + h
< δ: equivalent. With n seeds per configuration the contrast's SE² is V_net · n_now / n + V_test: the
between-network part V_net = σ²_w Σ w²/n_c, measured at n_now = Σ w² / Σ(w²/n_c) seeds, shrinks with seeds; the
test set's own part V_test = SE² − V_net does not. The family's critical value is taken as measured (h / SE now)
and the estimate as if it were true: a planning figure, not a promise. h(n) = crit·SE(n) falls to crit·√V_test as
n → ∞; where that still leaves the claim open no number of seeds decides it (more test patients or images would).
Otherwise the smallest n with h(n) below the target (|estimate| where |estimate| ≥ δ, else δ − |estimate|) is
closed-form, at least `analysis.min_seeds` and one more than now, and at most CAP. Pure numpy; no Ray, no MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CAP = 100  # the most seeds per configuration a plan names
NEAR = 0.1  # |estimate| within this share of δ: "close to δ" (deciding it then needs very many seeds)
OPEN = ("undecided", "insufficient_replication")
FIELDS = ("seeds_to_decide", "extra_trials_to_decide", "trial_hours_to_decide", "to_decide", "near_min_effect")


@dataclass(frozen=True)
class Plan:
    """`seeds`: per configuration, or None; `why`: "separation" | "equivalence" (what would decide it at `seeds`),
    "test_set" (no number of seeds would), "beyond_cap" (more than CAP), "no_variance" (no SE to scale) or
    "no_contrast" (not a contrast of configuration means: Ψ versus λ);
    `near_delta`: |estimate| within NEAR·δ of δ."""

    seeds: int | None
    why: str
    near_delta: bool = False


def seeds_to_decide(estimate: float, half_width: float, se: float, var_network: float, seeds_now: float,
                    delta: float, start: int = 2, cap: int = CAP) -> Plan:
    """The smallest n ≥ `start` seeds per configuration at which |estimate| > h(n) ≥ … (separated, |estimate| ≥
    `delta`) or |estimate| + h(n) < `delta` (equivalent), h(n) = (half_width / se) · √(var_network · seeds_now / n
    + se² − var_network) (module docstring)."""
    values = (estimate, half_width, se, var_network, seeds_now, delta)
    if not all(np.isfinite(values)) or se <= 0 or seeds_now <= 0:
        return Plan(None, "no_variance")
    est, crit = abs(float(estimate)), float(half_width) / float(se)
    near = delta > 0 and abs(est - delta) < NEAR * delta
    var_net = min(max(float(var_network), 0.0), float(se) ** 2)
    var_test = float(se) ** 2 - var_net
    separates = est >= delta
    target = est if separates else delta - est
    floor = crit**2 * var_test  # h² as n → ∞
    if target <= 0 or target**2 <= floor:
        return Plan(None, "test_set", near)
    n = max(int(start), math.floor(crit**2 * var_net * seeds_now / (target**2 - floor)) + 1)
    if n > cap:
        return Plan(None, "beyond_cap", near)
    return Plan(n, "separation" if separates else "equivalence", near)


def half_width_at(n: float, half_width: float, se: float, var_network: float, seeds_now: float) -> float:
    """h(n): the family's half-width at n seeds per configuration (module docstring)."""
    var_net = min(max(var_network, 0.0), se**2)
    return half_width / se * math.sqrt(var_net * seeds_now / n + se**2 - var_net)


def claim_plan(row, weights: dict[str, float] | None, nets, delta: float, min_seeds: int,
               wall_s: float) -> dict:
    """The FIELDS of a claim whose contrast is `weights` (configuration → w) with its family's `row` (estimate, se,
    ci_low, ci_high) on `nets` (analysis.networks.Networks); `wall_s`: the study's median trial wall time."""
    counts = nets.config_counts
    w = {c: float(x) for c, x in (weights or {}).items() if x and c in counts.index}
    sum_w2 = sum(x * x for x in w.values())
    a = sum(x * x / counts[c] for c, x in w.items())
    if not w or a <= 0:
        return _fields(Plan(None, "no_variance"), None, wall_s)
    seeds_now = sum_w2 / a
    plan = seeds_to_decide(float(row["estimate"]), (float(row["ci_high"]) - float(row["ci_low"])) / 2,
                           float(row.get("se", np.nan)), a * float(nets.variance.ms_within), seeds_now, delta,
                           start=max(int(min_seeds), math.floor(seeds_now + 1e-9) + 1))
    extra = None if plan.seeds is None else int(sum(max(0, plan.seeds - int(counts[c])) for c in w))
    return _fields(plan, extra, wall_s)


def _fields(plan: Plan, extra: int | None, wall_s: float) -> dict:
    hours = None if extra is None or not np.isfinite(wall_s) else round(extra * wall_s / 3600, 4)
    return {"seeds_to_decide": plan.seeds, "extra_trials_to_decide": extra, "trial_hours_to_decide": hours,
            "to_decide": plan.why, "near_min_effect": plan.near_delta}


def median_wall_s(trials) -> float:
    """The study's median trial wall time in seconds (finished trials; NaN without a `wall_s` column)."""
    if trials is None or "wall_s" not in trials:
        return float("nan")
    done = trials[trials["status"] == "finished"] if "status" in trials else trials
    wall = done["wall_s"].dropna()
    return float(wall.median()) if len(wall) else float("nan")


def plan_text(c) -> str:
    """'7 seeds (+0.8 trial-hours)' for an open claim's FIELDS, or why no number of seeds would decide it ('' when it
    has none)."""
    why = c.get("to_decide")
    if why is None:
        return ""
    near = bool(c.get("near_min_effect"))
    if c.get("seeds_to_decide") is not None:
        hours = c.get("trial_hours_to_decide")
        cost = f"+{_hours(hours)} trial-hours" if hours is not None else f"+{c['extra_trials_to_decide']} trials"
        return f"{c['seeds_to_decide']} seeds ({cost}{'; |estimate| ≈ δ' if near else ''})"
    close = " (|estimate| is close to δ: it needs very many)" if near else ""
    return {"test_set": "no number of seeds (more test patients or images would)",
            "beyond_cap": f"more than {CAP} seeds{close}",
            "no_contrast": "no seeds figure (not a contrast of configurations)"}.get(
        why, "no seeds figure (no between-network variance)")


def _hours(h: float) -> str:
    return f"{h:.2g}" if h < 10 else f"{h:,.0f}"


def with_plans(claims: list, contrasts: dict, nets, delta: float, min_seeds: int, trials) -> list:
    """`claims` with the FIELDS added to each open one whose position has a contrast in `contrasts` (position →
    (family row, weights)), from the networks `nets` and the study's median trial wall time."""
    wall_s = median_wall_s(trials)
    return [c.replace(**claim_plan(*contrasts[i], nets, delta, min_seeds, wall_s))
            if c["kind"] in OPEN and i in contrasts else c for i, c in enumerate(claims)]


def open_claims(claims: list) -> list:
    """The open claims that carry a plan, each pair once, the cheapest to decide first (per metric in the claims'
    order)."""
    mine = list({(c["metric"], c["subject"], c["reference"]): c for c in claims
                 if c["kind"] in OPEN and c.get("to_decide") is not None}.values())
    order = {m: i for i, m in enumerate(dict.fromkeys(c["metric"] for c in mine))}
    return sorted(mine, key=lambda c: (order[c["metric"]], c["seeds_to_decide"] is None, c["seeds_to_decide"] or 0))


def open_paragraph(claims: list, per_metric: int = 4) -> str | None:
    """guidelines.md's paragraph on what more would decide the open claims (None without any)."""
    mine = open_claims(claims)
    if not mine:
        return None
    parts = []
    for m in dict.fromkeys(c["metric"] for c in mine):
        cs = [c for c in mine if c["metric"] == m]
        more = f"; {len(cs) - per_metric} more in guidelines.json" if len(cs) > per_metric else ""
        parts.append(f"{m} — " + "; ".join(f"{c['subject']} vs {c['reference']}: {plan_text(c)}"
                                           for c in cs[:per_metric]) + more)
    return ("**What more would decide the open claims:** the seeds per configuration at which the claim's family "
            "interval would separate it (beyond its half-width and at least the smallest effect) or put it inside ± "
            "the smallest effect, at the measured variance and with the estimate taken as true (a planning figure, "
            "not a promise); trial-hours at the study's median trial wall time. " + " · ".join(parts) + ".")


def plan_rest(claims: list, vs_best: list, nets: dict, settings, trials) -> list:
    """The open claims their metric did not plan: a pair of configurations (the cross-metric comparison of the best
    configurations) from its row of the metric's configurations-against-the-best table (`vs_best`: one table per
    metric); any other (Ψ versus λ) with the FIELDS null and `to_decide` "no_contrast"."""
    wall = median_wall_s(trials)
    rows = {(r["metric"], r["a"], r["b"]): r for t in vs_best for r in t.to_dict("records")}
    out = []
    for c in claims:
        if c["kind"] not in OPEN or "to_decide" in c or c["subject"] == "seeds per configuration":
            out.append(c)
            continue
        m, row = c["metric"], rows.get((c["metric"], c["subject"], c["reference"]))
        plan = (claim_plan(row, {c["subject"]: 1.0, c["reference"]: -1.0}, nets[m], settings.effect(m),
                           settings.min_seeds, wall) if row is not None and m in nets
                else _fields(Plan(None, "no_contrast"), None, wall))
        out.append(c.replace(**plan))
    return out
