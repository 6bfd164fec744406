"""The report's first screen (at most 30 lines, before Design): per metric the recommended configuration with its
effect and 95% CI against the pixel-only baseline and against the runner-up, the networks, images and patients it
rests on and whom it covers; what is undecided and, per named claim, how many seeds (and trial-hours) would decide it
(analysis.decide); what the study cost. Everything comes from the Evidence's claims and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.decide import OPEN, plan_text
from analysis.load import BASELINE, unit_suffix

MAX_LINES = 30
MAX_UNDECIDED = 3  # undecided claims named per metric (the rest counted)


def _ci(est: float, lo: float, hi: float, metric: str) -> str:
    return f"{est:+.3g}{unit_suffix(metric)} [{lo:.3g}, {hi:.3g}]"


def _best(claims: list[dict], metric: str) -> dict | None:
    return next((c for c in claims if c["metric"] == metric and c.get("would_be", c["kind"]) == "best"), None)


def _runner_up(vs_best: pd.DataFrame | None, metric: str, best: str) -> str:
    """'+0.05 dB [−0.2, 0.3] (name)': best − the closest other configuration, with its simultaneous CI."""
    if vs_best is None or not len(vs_best):
        return "—"
    t = vs_best[(vs_best["metric"] == metric) & (vs_best["a"] == best)]
    if not len(t):
        return "—"
    r = t.loc[t["estimate"].abs().idxmin()]
    return f"{_ci(r['estimate'], r['ci_low'], r['ci_high'], metric)} ({r['b']})"


def _row(c: dict | None, metric: str, vs_best: pd.DataFrame | None, min_seeds: int) -> str:
    if c is None:
        return f"| {metric} | no configuration stands out | — | — | — | — |"
    name = f"**{c['subject']}**"
    if c["kind"] == "insufficient_replication":
        name = f"none claimed: {c['subject']} leads, but on < {min_seeds} networks a side"
    elif c.get("tied"):
        name += f" (tied with {len(c['tied'])} other{'s' * (len(c['tied']) > 1)})"
    base = (_ci(c["estimate"], c["ci_low"], c["ci_high"], metric) if c.get("reference") == BASELINE
            else "no baseline")
    n = f"{c['n_networks']} · {c['n_images']} · {c['n_patients']}"
    who = "these test patients" if c.get("population") == "these_test_patients" else "patients"
    return f"| {metric} | {name} | {base} | {_runner_up(vs_best, metric, c['subject'])} | {n} | {who} |"


def _seeds_text(v: pd.Series, metric: str, seeds: int, min_seeds: int) -> str:
    """How many seeds per configuration would decide the metric's open claims, at the measured variance."""
    delta, power = f"{v['smallest_effect']:g}{unit_suffix(metric)}", v["seeds_for_80pct_power"]
    if not np.isfinite(power):
        return (f"; no number of seeds finds a {delta} difference with 80% power here: the test set's own "
                f"variation is too large (more test images or patients would)")
    need = max(int(np.ceil(power)), min_seeds)
    floor = f"; fewer than {min_seeds} (`analysis.min_seeds`) make no claim" if need > power else ""
    return f"; with {need} seeds per configuration (now {seeds}) a {delta} difference is found with 80% power{floor}"


def _named(c: dict) -> str:
    """'subject vs reference: 7 seeds (+0.8 trial-hours)' (analysis.decide), or without the plan where it has none."""
    plan = plan_text(c)
    return f"{c['subject']} vs {c['reference']}" + (f": {plan}" if plan else "")


def _undecided(claims: list[dict], variance: pd.DataFrame | None, seeds: int, min_seeds: int) -> list[str]:
    """Per metric its open claims (each pair once), the cheapest to decide first, each with what would decide it
    (analysis.decide); the study-wide seeds figure only where none has its own."""
    lines = []
    for m in dict.fromkeys(c["metric"] for c in claims):
        open_ = list({(c["subject"], c["reference"]): c for c in claims if c["metric"] == m and c["kind"] in OPEN
                      and c["subject"] != "seeds per configuration"}.values())
        if not open_:
            continue
        open_.sort(key=lambda c: (c.get("seeds_to_decide") is None, c.get("seeds_to_decide") or 0))
        named = "; ".join(_named(c) for c in open_[:MAX_UNDECIDED])
        more = f"; {len(open_) - MAX_UNDECIDED} more in guidelines.json" if len(open_) > MAX_UNDECIDED else ""
        need = ""
        if all(c.get("to_decide") is None for c in open_) and variance is not None and (variance["metric"] == m).any():
            need = _seeds_text(variance[variance["metric"] == m].iloc[0], m, seeds, min_seeds)
        lines.append(f"- **Undecided ({m}):** {named}{more}{need}.")
    if lines and any(c.get("seeds_to_decide") is not None for c in claims):  # said once: what the seeds figures are
        lines[0] = lines[0][:-1] + (" (seeds per configuration at the measured variance, the estimate taken as true: "
                                    "a planning figure; see Methods).")
    return lines


def summary_lines(ev) -> list[str]:
    """The first screen of report.md (ev: analysis.evidence.Evidence), at most MAX_LINES lines."""
    d, nets = ev.design, ev.networks
    wall, n_trials = d["wall_s"], sum(d["counts"].values())
    cost = (f"- **Cost:** {wall / 3600:.2f} trial-hours over {n_trials} trials "
            f"({d['counts'].get('finished', 0)} finished).")
    lines = ["## Summary", ""]
    if nets is None:
        return lines + ["No finished trial yet: no claims.", cost, ""]
    if nets.population:
        lines += [f"**Who the claims are about:** {nets.population} (See Guidelines and Methods.)", ""]
    vs_best = nets.tables.get("vs_best")
    lines += ["| metric | recommended | vs pixel-only (95% CI) | vs runner-up (95% CI) | networks · images · patients "
              "| covers |", "|---|---|---|---|---|---|"]
    lines += [_row(_best(nets.claims, m), m, vs_best, ev.study.settings.min_seeds) for m in ev.study.metrics]
    lines += ["", *_undecided(nets.claims, nets.variance, nets.context.get("seeds", 0), ev.study.settings.min_seeds),
              cost, ""]
    if len(lines) > MAX_LINES:  # many metrics: keep the table, cut the undecided list
        lines = lines[:MAX_LINES - 2] + ["- (more in Guidelines)", ""]
    return lines
