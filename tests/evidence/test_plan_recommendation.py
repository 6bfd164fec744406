"""Issue #29's check of `study plan`: on a pilot folder with known components, the seeds `study plan --json`
recommends are checked against an independent simulation of the report (per-image tables through the claims code,
another seed stream) at that design and one seed fewer: power(n) ≥ target − 0.05 and power(n − 1) < target + 0.05,
each up to its Monte-Carlo error; at the known components the fast path's power and false-claim rate agree with
the report's within Monte-Carlo error. (The plan itself simulates with the components it reads from the pilot.) CI-light (20 studies per check); benchmarks/plan_check.py runs it with hundreds."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from typer.testing import CliRunner

from analysis.claims import Settings, study_claims
from analysis.judge import best_beats, other_firm
from analysis.planning import families, simulate_fast
from analysis.simulate import Components, Design, study_tables
from helpers import tiny_spec, write_spec
from study.cli import app

KNOWN = Components(net_sd=0.4, config_patient_sd=0.0, residual_sd=0.5)
DELTA, TARGET, REPS = 1.0, 0.8, 20
PLANNED = Design(levels=("block1_conv2",), pretrainings=("imagenet", "random"), lams=(0.1,), patients=1, slices=12)


def write_pilot(root, design: Design, comp: Components, seed: int = 7):
    """A finished results folder (trials and per-image tables, the truth left out) drawn from known components."""
    trials, images = study_tables(design, comp, None, seed=seed, metrics=("psnr",))
    root.mkdir(parents=True)
    trials.attrs.clear()
    trials.to_parquet(root / "trials.parquet")
    images.to_parquet(root / "per_image.parquet")
    (root / "study.yaml").write_text("name: pilot\n")
    return root


def report_power(design: Design, comp: Components, s: Settings, names, reps: int, seed: int) -> dict[str, float]:
    """The share of `reps` synthetic studies per family in whose report (study_claims) the family finds its planted
    effect, and under the null ("false") the share with a false claim."""
    fam = families(design, "psnr", s.effect("psnr"), s.alpha)
    out = {}
    for i, name in enumerate(names):
        effect, judge = fam.get(name, (None, None))
        hits = 0
        for r in range(reps):
            trials, images = study_tables(design, comp, effect, seed=seed + 10_000 * i + r)
            claims, tables, _ = study_claims(images, trials, ["psnr"], s)
            truth = trials.attrs["truth"]
            hits += bool(best_beats(claims, truth) or other_firm(claims, truth)) if name == "false" else judge(tables)
        out[name] = hits / reps
    return out


def recommend(tmp_path, pilot, planned: Design, reps: int = 200) -> dict:
    """`study plan --json` for a spec of `planned`'s grid, the pilot's components."""
    spec = tiny_spec(tmp_path, factors={"feature_level": list(planned.levels), "pretraining": list(planned.pretrainings),
                                        "lam": [0, *planned.lams], "seed": [0]}, analysis={"min_effect": {"psnr": DELTA}})
    res = CliRunner().invoke(app, ["plan", str(write_spec(tmp_path, spec)), "--pilot", str(pilot), "--json",
                                   "--reps", str(reps), "--max-seeds", "12", "--power", str(TARGET)])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_the_recommended_seeds_reach_the_power_in_an_independent_simulation_and_one_fewer_does_not(tmp_path):
    pilot = write_pilot(tmp_path / "pilot", Design(seeds=10, patients=1, slices=12), KNOWN)  # 130 networks
    out = recommend(tmp_path, pilot, PLANNED)
    rec = out["recommended"]
    assert rec is not None and out["metrics"][0]["simulated_from"] == "network statistics"
    n, designs = rec["seeds"], {d["seeds"]: d for d in out["designs"]}
    assert n > 3 and n - 1 in designs  # not at analysis.min_seeds: the seed fewer is a real design
    s = Settings(min_effect={"psnr": DELTA})
    at_n = report_power(replace(PLANNED, seeds=n), KNOWN, s, [*rec["power"], "false"], REPS, seed=1_000_000)
    weakest = min(designs[n - 1]["power"], key=designs[n - 1]["power"].get)
    fewer = report_power(replace(PLANNED, seeds=n - 1), KNOWN, s, [weakest], REPS, seed=2_000_000)
    mc = lambda p, k: 2 * np.sqrt(max(p * (1 - p), 0.05) / k)  # 2 Monte-Carlo SEs of a share of k studies
    power_n = min(v for k, v in at_n.items() if k != "false")
    assert power_n >= TARGET - 0.05 - mc(TARGET, REPS), (n, at_n)
    assert fewer[weakest] < TARGET + 0.05 + mc(TARGET, REPS), (n - 1, fewer)
    power, false = simulate_fast(replace(PLANNED, seeds=n), KNOWN, "psnr", s, 1000, seed=5)
    for name, share in at_n.items():  # the fast path at the known components against the report, family by family
        fast = false if name == "false" else power[name]
        assert abs(fast - share) <= 1.5 * mc(fast, REPS), (name, fast, share)
