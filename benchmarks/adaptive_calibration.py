"""Benchmark 10: adaptive seeds (analysis.adaptive) against the fixed design, on synthetic outcomes.

Each synthetic study (analysis.simulate) is drawn with `max_seeds` networks per configuration; the adaptive study
sees the first `min_seeds` of each (stage 1), takes analysis.adaptive.stage_two's decision, keeps the networks it
allots, and is analysed once by the report's claims code at α₂ = α − α₁. The fixed designs are the same studies cut
to n seeds everywhere, analysed at α. Counted:
- false claims under the null and under a partial null (a third of the configurations 3 dB worse, the rest equal):
  any best/better/worse/depends/factor claim the truth contradicts (analysis.judge.best_beats, other_firm);
- power: the planted best configuration (δ better than its rivals) named best and separated from pixel-only;
- trials: the mean number of networks trained.
Run: python benchmarks/adaptive_calibration.py [--reps N] [--jobs J] [--fixed N...] [--cases CASE... [--section NAME]]
     [--no-write]; a run of some cases writes its own section, "Benchmark 10: ... (NAME)", beside the full run's.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.adaptive import final_alpha, stage_two
from analysis.claims import Settings, study_claims
from analysis.judge import level_gap, best_beats
from analysis.simulate import Components, Design, label, study_tables

DESIGN = Design(seeds=3, patients=10, slices=10)
NOISE = Components(net_sd=0.5, config_patient_sd=0.1, residual_sd=0.5)
DELTA, POWER, MIN_SEEDS, MAX_SEEDS = 1.0, 0.8, 3, 12
SETTINGS = Settings(min_effect={"psnr": DELTA})
BEST = ("block3_conv2", "imagenet", 0.001)


def worse_arms(lv, p, lam, psi):
    return -3.0 if lam == 0.1 else 0.0  # the λ = 0.1 arms: the pixel term drowned


def planted(lv, p, lam, psi):
    return DELTA if (lv, p, lam) == BEST else worse_arms(lv, p, lam, psi)


CASES = {"null": None, "partial null": worse_arms, "power": planted}


def _cut(trials, images, seeds: dict[str, int] | int):
    n = images["configuration"].map(seeds) if isinstance(seeds, dict) else seeds
    m = trials["configuration"].map(seeds) if isinstance(seeds, dict) else seeds
    keep_t = trials[trials["seed"] < m].copy()
    keep_t.attrs["truth"] = trials.attrs["truth"]
    return keep_t, images[images["seed"] < n].reset_index(drop=True)


KINDS = ("best", "better/worse", "depends", "factor_importance")


def false_claims(claims, truth, alpha: float) -> set[str]:
    """The claim kinds with a claim the truth contradicts, where only the λ = 0.1 arms may differ (no interaction
    planted): a best that beats a configuration at least as good; a level better/worse against the true gap; any
    depends claim; a factor term significant other than λ's own."""
    out = {"best"} if best_beats(claims, truth) else set()
    for c in claims:
        if c["kind"] in ("better", "worse") and c.get("factor"):
            a, b = c["subject"].split("=", 1)[1], c["reference"].split("=", 1)[1]
            gap = level_gap(truth, c, c["factor"], a, b)
            if (gap <= 1e-9) if c["kind"] == "better" else (gap >= -1e-9):
                out.add("better/worse")
        if c["kind"] == "depends":
            out.add("depends")
        if c["kind"] == "factor_importance" and (c["p_adj"] or 1) < alpha:
            lam_matters = level_gap(truth, c, "lam", "0.001", "0.1") != 0
            if list(c.get("factors", [])) != ["lam"] or not lam_matters:
                out.add("factor_importance")
    return out


def _judge(case: str, claims, tables, truth, alpha: float) -> set[str]:
    """Null cases: the kinds with a false claim; power: {"found"} when the planted best is found."""
    if case != "power":
        return false_claims(claims, truth, alpha)
    t = tables.get("vs_best")
    if t is None:
        return set()
    r = t[(t["a"] == label(*BEST)) & (t["b"] == "pixel-only")]
    return {"found"} if len(r) and (r["p_adj"] < alpha).any() else set()


def one(args) -> dict:
    """One synthetic study: the adaptive design's outcome and trials, and each fixed design's outcome."""
    case, seed, fixed = args
    trials, images = study_tables(replace(DESIGN, seeds=MAX_SEEDS), NOISE, CASES[case], seed=seed)
    t1, i1 = _cut(trials, images, MIN_SEEDS)
    st = stage_two(i1, t1, "psnr", SETTINGS, power=POWER, min_seeds=MIN_SEEDS, max_seeds=MAX_SEEDS)
    ta, ia = _cut(trials, images, st.seeds)
    a2 = final_alpha(SETTINGS.alpha, None)
    claims, tables, _ = study_claims(ia, ta, ["psnr"], replace(SETTINGS, alpha=a2))
    out = {"adaptive": _judge(case, claims, tables, trials.attrs["truth"], a2), "trials": len(ta),
           "n_star": st.seeds_needed or 0}
    for n in fixed:
        tf, imf = _cut(trials, images, n)
        claims, tables, _ = study_claims(imf, tf, ["psnr"], SETTINGS)
        out[n] = _judge(case, claims, tables, trials.attrs["truth"], SETTINGS.alpha)
    return out


def run(reps: int, jobs: int, fixed: dict[str, tuple[int, ...]], cases=tuple(CASES)) -> list[dict]:
    rows = []
    for case in cases:
        t0 = time.time()
        with Pool(jobs) as pool:
            res = pool.map(one, [(case, 10_000 * (list(CASES).index(case) + 1) + r, fixed[case]) for r in range(reps)])
        rows.append({"case": case, "reps": reps, "res": res, "s": time.time() - t0})
        print(_line(rows[-1], fixed[case]), flush=True)
    return rows


def _share(k: int, n: int) -> str:
    lo, hi = proportion_confint(k, n, method="wilson")
    return f"{100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def _by_kind(res: list[dict], key, n: int) -> str:
    """' (best 0.5%, factor_importance 3.0%)': each claim kind's own false-claim share, where any is false."""
    shares = [f"{k} {100 * sum(k in r[key] for r in res) / n:.1f}%" for k in KINDS if any(k in r[key] for r in res)]
    return f" (by kind: {', '.join(shares)})" if shares else ""


def _line(row: dict, fixed) -> str:
    res, n = row["res"], row["reps"]
    cells = [f"adaptive {_share(sum(bool(r['adaptive']) for r in res), n)}{_by_kind(res, 'adaptive', n)}, mean trials "
             f"{np.mean([r['trials'] for r in res]):.1f} (median n* {np.median([r['n_star'] for r in res]):g})"]
    cells += [f"fixed {k} seeds ({k * len(DESIGN.configurations())} trials) {_share(sum(bool(r[k]) for r in res), n)}"
              f"{_by_kind(res, k, n)}" for k in fixed]
    return f"| {row['case']} | {n} | " + " | ".join(cells[:1]) + " | " + "; ".join(cells[1:]) + f" | {row['s']:.0f} |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--fixed", type=int, nargs="*", default=[6, 8, 9, 10, 11])
    ap.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--section", default="cases re-run with more studies", help="RESULTS.md section for --cases runs")
    a = ap.parse_args()
    fixed = {"null": (10,), "partial null": (10,), "power": tuple(a.fixed)}
    rows = run(a.reps, a.jobs, fixed, a.cases)
    if a.no_write:
        return
    from results_md import command, write_section

    head = ["| case | studies | adaptive: claims share, mean trials | fixed designs | s |", "|---|---|---|---|---|"]
    text = [f"{len(DESIGN.configurations())} configurations (2 layers × 2 pretrainings × 3 λ + pixel-only), "
            f"{DESIGN.patients} patients × {DESIGN.slices} slices, between-network SD {NOISE.net_sd} dB, "
            f"configuration × patient SD {NOISE.config_patient_sd} dB, δ = {DELTA} dB; adaptive: min_seeds "
            f"{MIN_SEEDS}, max_seeds {MAX_SEEDS}, power {POWER}, α₁ = 0.01 (screen), α₂ = 0.04 (final), n* planned "
            "at the stage-1 variance's upper 80% bound. "
            "False-claim share of any claim kind (null cases; each kind's own share in brackets) or power (power case), "
            "Wilson 95% intervals.", "", *head,
            *[_line(r, fixed[r["case"]]) for r in rows]]
    subset = a.cases != list(CASES)
    write_section("Benchmark 10: adaptive seeds against fixed designs" + (f" ({a.section})" if subset else ""),
                  command(), "\n".join(text))


if __name__ == "__main__":
    main()
