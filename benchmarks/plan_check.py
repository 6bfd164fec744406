"""Benchmark 12: `study plan`'s recommendation against an independent simulation of the report (issue #29's
done-when check, with many studies; tests/evidence/test_plan_recommendation.py is its CI-light version).

Per case: a pilot results folder drawn from known components (analysis.simulate), `study plan --json` on a spec of
the planned grid (fast path, --reps 400), then the report itself simulated independently — per-image tables through
analysis.claims.study_claims (analysis.planning.simulate with exact=True, another seed stream) with the known
components — at the recommended seeds n and at n − 1. Passes when power(n) ≥ target − 0.05 and
power(n − 1) < target + 0.05 (the smallest family power); also shows the plan's fast-path power and false-claim rate
beside the report's.
Run: python benchmarks/plan_check.py [--reps 300] [--jobs 2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import yaml
from statsmodels.stats.proportion import proportion_confint

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from analysis.claims import Settings
from analysis.simulate import Components, Design, study_tables

TARGET, PLAN_REPS, CHUNK = 0.8, 400, 25
CASES = {  # name → (pilot design, planned design, known components, δ in dB)
    "3 configurations, 1 patient × 12 slices": (
        Design(seeds=10, patients=1, slices=12),
        Design(levels=("block1_conv2",), pretrainings=("imagenet", "random"), lams=(0.1,), patients=1, slices=12),
        Components(net_sd=0.4, config_patient_sd=0.0, residual_sd=0.5), 1.0),
    "13 configurations, 6 patients × 4 slices": (
        Design(pretrainings=("imagenet", "random"), seeds=10, patients=6, slices=4),
        Design(pretrainings=("imagenet", "random"), patients=6, slices=4),
        Components(net_sd=0.3, config_patient_sd=0.15, residual_sd=0.5), 1.0),
}


def spec_of(tmp: Path, planned: Design, delta: float) -> Path:
    spec = {"name": "planned", "backend": "local",
            "data": {"source": "phantom", "size": 64, "n_train": 4, "n_val": 2, "n_test": 4, "seed": 3},
            "model": {"name": "unet", "channels": 4, "levels": 3},
            "training": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 2, "lr": 2e-3, "patch_size": 16},
            "factors": {"feature_level": list(planned.levels), "pretraining": list(planned.pretrainings),
                        "lam": [0, *planned.lams], "seed": [0]},
            "analysis": {"min_effect": {"psnr": delta}}, "tracking": {"enabled": False}, "output": str(tmp / "out")}
    path = tmp / "planned.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def recommend(tmp: Path, case: tuple) -> tuple[dict, Components]:
    """`study plan --json` on the case's pilot folder (drawn from its known components), and the components the
    pilot gives (what the plan simulated with)."""
    from analysis.factors import design_networks
    from analysis.planning import components_of

    pilot_design, planned, comp, delta = case
    trials, images = study_tables(pilot_design, comp, None, seed=7, metrics=("psnr",))
    read = components_of(design_networks(images, "psnr", Settings().min_patients)[0].variance, "psnr")
    pilot = tmp / "pilot"
    pilot.mkdir()
    trials.attrs.clear()
    trials.to_parquet(pilot / "trials.parquet")
    images.to_parquet(pilot / "per_image.parquet")
    (pilot / "study.yaml").write_text("name: pilot\n")
    args = ["plan", str(spec_of(tmp, planned, delta)), "--pilot", str(pilot), "--json", "--reps", str(PLAN_REPS),
            "--power", str(TARGET), "--max-seeds", "16"]
    proc = subprocess.run([sys.executable, "-m", "study", *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(proc.stdout), read


def _chunk(job: tuple) -> tuple[dict, float, int]:
    """Hits per family and false claims of one chunk of exact studies (analysis.planning.simulate, exact)."""
    from analysis.planning import simulate

    design, comp, delta, reps, seed = job
    power, false = simulate(design, comp, "psnr", Settings(min_effect={"psnr": delta}), reps, seed=seed, exact=True)
    return {k: v * reps for k, v in power.items()}, false * reps, reps


def report_rates(pool: Pool, design: Design, comp: Components, delta: float, reps: int, stream: int) -> dict:
    """The report's power per family and false-claim share at `design`, from `reps` exact studies each."""
    jobs = [(design, comp, delta, min(CHUNK, reps - s), 10_000_000 * stream + 100_000 * (s // CHUNK))
            for s in range(0, reps, CHUNK)]
    hits, false, total = {}, 0.0, 0
    for h, f, n in pool.map(_chunk, jobs):
        hits = {k: hits.get(k, 0) + v for k, v in h.items()}
        false, total = false + f, total + n
    return {"power": {k: round(v) for k, v in hits.items()}, "false": round(false), "n": total}


def share(k: int, n: int) -> str:
    lo, hi = proportion_confint(k, n, method="wilson")
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"


def check(name: str, case: tuple, pool: Pool, reps: int) -> dict:
    from analysis.planning import simulate_fast

    _, planned, comp, delta = case
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out, read = recommend(Path(tmp), case)
    rec = out["recommended"]
    n = rec["seeds"]
    plan = {d["seeds"]: d for d in out["designs"]}
    s = Settings(min_effect={"psnr": delta})
    known = {m: simulate_fast(replace(planned, seeds=m), comp, "psnr", s, 2000, seed=5)[0] for m in (n, n - 1)}
    at = {m: report_rates(pool, replace(planned, seeds=m), comp, delta, reps, stream=m) for m in (n, n - 1)}
    low = {m: min(r["power"].values()) / r["n"] for m, r in at.items()}
    ok = low[n] >= TARGET - 0.05 and low[n - 1] < TARGET + 0.05
    fams = lambda m: "; ".join(f"{k}: plan {plan[m]['power'][k]:.3f}, fast at the known {known[m][k]:.3f}, report "
                               f"{share(v, at[m]['n'])}" for k, v in at[m]["power"].items()) if m in plan else "–"
    return {"case": name, "δ (dB)": delta,
            "pilot's components (SD net, patient, image, residual)":
                f"{read.net_sd:.3f}, {read.config_patient_sd:.3f}, {read.config_image_sd:.3f}, {read.residual_sd:.3f}",
            "recommended n": n, f"power at n (report: {reps} studies per family)": fams(n),
            "power at n − 1": fams(n - 1),
            "false claims at n": f"plan {rec['false_claim']:.3f}, report {share(at[n]['false'], at[n]['n'])}",
            "check": f"{'pass' if ok else 'FAIL'}: min power {low[n]:.3f} at n, {low[n - 1]:.3f} at n − 1",
            "s": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    from results_md import command, table, write_section

    with Pool(a.jobs) as pool:
        rows = [check(name, case, pool, a.reps) for name, case in CASES.items()]
    body = (f"Pilot folders drawn from known components (10 seeds of a 13-configuration grid on the planned test set), "
            f"`study plan --json --reps {PLAN_REPS} --power {TARGET}` on the planned grid (fast path), then the report "
            f"simulated independently with the known components (per-image tables through `study_claims`, another "
            f"seed stream) at the recommended n and n − 1; Wilson 95% intervals. Known components (dB): case 1 "
            f"between-network SD 0.4, residual 0.5; case 2 between-network SD 0.3, configuration × patient SD 0.15, "
            f"residual 0.5 (6 patients: claims over patients, bootstrap max-t references). Pass: the smallest family "
            f"power ≥ {TARGET - 0.05:.2f} at n and < {TARGET + 0.05:.2f} at n − 1. Per family: the plan's power "
            f"(fast path, the pilot's components), the fast path at the known components (2,000 studies) and the "
            f"report's: the plan's difference from the report is the pilot's estimation error, the fast path's "
            f"within Monte-Carlo error.\n\n{table(rows)}")
    if a.no_write:
        print(body)
    else:
        write_section("Benchmark 12: study plan's recommendation against an independent simulation", command(), body)


if __name__ == "__main__":
    main()
