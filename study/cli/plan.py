"""`study plan`: how many seeds the study needs, before it runs (analysis.planning: simulation with the report's
own claims code, from network-level statistics or, with --exact, per-image tables; variance components from a pilot
results folder or the spec's analysis.prior)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from study.cli.app import app, console, user_errors
from study.errors import StudyError


def planned_trials(spec) -> "pd.DataFrame":  # noqa: F821
    """The study's grid as a trials table (the columns analysis.planning.design_of reads)."""
    import pandas as pd

    from study.planning.grid import configuration_label
    from study.planning.plan import plan

    rows = [{"feature_level": t.feature_level, "pretraining": t.pretraining, "lam": t.lam if t.lam is not None
             else float("nan"), "psi_target": t.psi_target, "status": "finished",
             "configuration": configuration_label(t.feature_level, t.pretraining, t.lam, t.psi_target)}
            for t in plan(spec, allow_missing_weights=True).trials if t.loss is None]
    return pd.DataFrame(rows)


@app.command("plan")
@user_errors
def plan_command(
    study: Path = typer.Argument(..., help="study spec (YAML)"),
    pilot: Optional[Path] = typer.Option(None, "--pilot", help="a finished results folder with ≥ 2 seeds on the same "
                                         "data: its variance components and trial cost"),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="GPU-hours (trial-hours) available"),
    power: float = typer.Option(0.8, "--power", min=0.05, max=0.99, help="power wanted for every claim family"),
    metric: Optional[List[str]] = typer.Option(None, "--metric", help="metrics to plan for (default: the spec's "
                                               "first; repeat for more)"),
    reps: int = typer.Option(100, "--reps", min=10, help="synthetic studies per design and family"),
    max_seeds: int = typer.Option(20, "--max-seeds", min=2),
    exact: bool = typer.Option(False, "--exact", help="simulate every study as per-image tables through the report's "
                               "claims code (slow on large grids); default: from its network-level statistics"),
    as_json: bool = typer.Option(False, "--json", help="print the plan as JSON"),
):
    """Power, false-claim rate, trial-hours and disk of candidate seeds per configuration; the cheapest design that
    reaches --power within --budget."""
    from analysis.planning import design_of, plan, read_pilot
    from analysis.settings import analysis_spec_of, settings_of
    from study.spec import load_spec

    spec = load_spec(study, check_paths=False)
    raw = spec.model_dump(mode="json")
    settings = settings_of(study.parent, raw, analysis_spec_of(study.parent, raw))  # the planned study's settings
    metrics = list(metric or spec.metrics[:1])
    grid = planned_trials(spec)
    per_seed = int(grid["configuration"].nunique())
    if pilot is not None:
        pil, per_image = read_pilot(pilot, settings.min_patients, metrics)
        pil, source = _with(pil, design_of(grid, per_image)), f"pilot {pilot}"
    else:
        pil, source = _from_prior(spec, study, grid, metrics), f"analysis.prior of {study}"
    out = []
    for m in metrics:
        if m not in pil.components:
            raise StudyError(f"--metric {m!r}: the {source} has no {m} that the planner can simulate")
        start = _closed_form(pil, m, settings, power, max_seeds)
        out.append(plan(pil, m, settings, start, power, budget, max_seeds, reps, per_seed=per_seed, exact=exact))
    result = {"recommended": out[0]["recommended"], "designs": out[0]["designs"], "metrics": out}
    if as_json:
        print(json.dumps(result, indent=1, default=float))
        return
    _print(out)


def _from_prior(spec, study: Path, grid, metrics: list[str]):
    """The Pilot the spec's `analysis.prior` states, its cost from the dry run's estimate (study.planning.estimate)."""
    from analysis.planning import prior_pilot
    from study.planning.estimate import estimate
    from study.planning.plan import plan

    priors = spec.analysis.prior
    if not priors:
        raise StudyError(f"{study}: study plan needs --pilot RESULTS_DIR (a finished study with ≥ 2 seeds on the same "
                         "data) or stated variance components in analysis.prior")
    missing = [m for m in metrics if m not in priors]
    if missing:
        raise StudyError(f"{study}: field 'analysis.prior' states no {', '.join(missing)} (it has {', '.join(priors)})")
    p = plan(spec, allow_missing_weights=True)
    est = estimate(p, states={t.run_key: "pending" for t in p.trials})  # the whole study, as if nothing had run
    per_trial = est.seconds / 3600 / est.n_trials if est.seconds and est.n_trials else float("nan")
    disk = est.disk / 1e9 / est.n_trials if est.n_trials else None
    return prior_pilot(grid, {m: priors[m] for m in metrics}, per_trial, disk)


def _closed_form(pil, metric: str, settings, power: float, max_seeds: int) -> int:
    """Where the search starts: the fewest seeds at which the report's max-t over all pairs of the k configurations
    separates two configurations δ apart with the power (analysis.adaptive.pair_power), from the components, found
    by bisection; the best-configuration family is mostly the hardest one."""
    from analysis.adaptive import pair_power
    from analysis.simulate import METRIC_SCALE

    c, unit = pil.components[metric], abs(METRIC_SCALE[metric][1])
    delta, d = settings.effect(metric) / unit, pil.design
    k, images = max(len(d.configurations()), 2), d.patients * d.slices
    patients = d.patients >= max(2, settings.min_patients)  # else the patient terms are fixed, not test-set noise
    test = (c.config_patient_sd**2 / d.patients if patients else 0.0) + c.config_image_sd**2 / images
    net_var = c.net_sd**2 + c.residual_sd**2 / images

    def enough(n: int) -> bool:
        return pair_power(n, k, net_var, test, delta, settings.alpha) >= power

    lo, hi = 2, max_seeds
    while lo < hi:  # power grows with n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return lo


def _with(pil, design):
    from dataclasses import replace

    return replace(pil, design=design)


def _print(out: list[dict]) -> None:
    from rich.table import Table

    for p in out:
        table = Table(title=f"{p['metric']}: seeds per configuration (power target {p['power_target']:g})")
        for col in ("seeds", "min power", "power per family", "false claims", "trials", "trial-hours"):
            table.add_column(col)
        for d in p["designs"]:
            fam = ", ".join(f"{k} {v:.2f}" for k, v in d["power"].items())
            table.add_row(str(d["seeds"]), f"{d['min_power']:.2f}", fam, f"{d['false_claim']:.2f}", str(d["trials"]),
                          f"{d['trial_hours']:.2f}")
        console.print(table)
        rec = p["recommended"]
        console.print(f"recommended: {rec['seeds']} seeds per configuration ({rec['trial_hours']:.2f} trial-hours)"
                      if rec else "no candidate reaches the power target within the budget")
