"""An adaptive study's stage 2, decided once stage 1 is over (analysis.adaptive.stage_two on its networks) and
recorded in RESULTS_DIR/stages.json before any stage-2 trial starts: a rerun reads the record instead of deciding
again, so the same trials (same run keys) are run, each once."""

from __future__ import annotations

import time

from rich.console import Console

from study.planning.plan import Plan, plan
from study.planning.stages import STAGES_FILE, all_seeds, read_stages
from study.store.results import write_json, write_tables


def stage_pending(p: Plan) -> bool:
    """An adaptive study whose stage 2 is not decided yet."""
    return bool(p.spec.adaptive) and read_stages(p.out) is None


def decide(p: Plan, console: Console) -> Plan | None:
    """Once every stage-1 trial has ended: decide stage 2, record it, and return the plan with its trials; None when
    stage 2 is already decided or stage 1 is not over."""
    if not stage_pending(p) or any(s not in ("finished", "failed") for s in p.states().values()):
        return None
    rec = record(p)
    write_json(p.out / STAGES_FILE, rec)
    second = rec["stages"][1]
    console.print(f"adaptive: stage 2 adds {second['trials']} trials to {len(second['added'])} configurations "
                  f"({second['why']}) → {p.out / STAGES_FILE}", markup=False, highlight=False, soft_wrap=True)
    return plan(p.spec, p.out)


def record(p: Plan) -> dict:
    """The stage record: stage 1 (every configuration's first min_seeds seeds) and the stage-2 decision."""
    from dataclasses import replace

    from analysis.adaptive import final_alpha, screen_alpha, stage_two
    from analysis.compute import read_study

    a, spec = p.spec.adaptive, p.spec
    write_tables(p.out, p.rows())
    st = read_study(p.out)
    s = replace(st.settings, alpha=spec.analysis.alpha)  # the study's α: the decision spends α₁ of it
    metric = spec.adaptive_metric
    decision = stage_two(st.per_image, st.trials, metric, s, power=a.power, min_seeds=a.min_seeds,
                         max_seeds=a.max_seeds, alpha_screen=a.screen_alpha)
    seeds = all_seeds(spec)
    added = {c: seeds[a.min_seeds:n] for c, n in decision.seeds.items() if n > a.min_seeds}
    if not added:
        why = f"none: {next(iter(decision.why.values()))}"
    else:
        why = (f"{decision.seeds_needed} seeds per configuration give power {decision.power:.2f} at "
               f"δ = {decision.variance['delta']:g} ({metric}); "
               f"{len(decision.seeds) - len(added)} configurations decided at stage 1")
    return {"design": "two stages: seeds from the stage-1 variance (internal pilot), configurations from a stage-1 "
                      "screen that spends alpha_screen; the report's claims use alpha_final",
            "metric": metric, "power": a.power, "min_seeds": a.min_seeds, "max_seeds": a.max_seeds,
            "alpha": spec.analysis.alpha, "alpha_screen": screen_alpha(spec.analysis.alpha, a.screen_alpha),
            "alpha_final": final_alpha(spec.analysis.alpha, a.screen_alpha), "seeds": seeds,
            "stages": [{"stage": 1, "seeds": seeds[:a.min_seeds], "trials": len(p.trials),
                        "why": f"every configuration gets min_seeds = {a.min_seeds}"},
                       {"stage": 2, "decided_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "why": why,
                        "added": added, "trials": sum(len(v) for v in added.values()),
                        "decision": decision.as_json()}]}
