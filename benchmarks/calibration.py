"""Benchmark 7: is every claim kind calibrated? Monte Carlo over synthetic studies (analysis.simulate) with no effect
or a planted one, through the same claims code the report uses (analysis.claims.study_claims): the share of studies
with a false claim of each kind (null designs) and the share that find a planted effect (power), with 95% Wilson
intervals. Run: python benchmarks/calibration.py [--reps N] [--jobs J] [--only NAME ...] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.judge import best_beats, share, found, not_these_patients, other_firm, pretraining_claim, psi_claim
from analysis.simulate import Components, Design

NOISE = Components(net_sd=0.3, config_patient_sd=0.2, residual_sd=0.5)


def medical(db: float):
    return lambda level, pre, lam, psi: db if lam and pre == "medical" else 0.0


def psi_optimum(level, pre, lam, psi):
    """Best at Ψ = 0.95 in every cell (paper 1's finding): −0.4 dB per unit of logit distance squared."""
    return -0.4 * (np.log(psi / (1 - psi)) - np.log(0.95 / 0.05)) ** 2 if lam else 0.0


THREE = ("block3_conv2", "block4_conv4", "block5_conv4")
#: name → (design, components, effect, what counts, metrics): `what` returns True for a counted study
PURE = Components(net_sd=0.3, config_patient_sd=0.0, residual_sd=0.5)
PRE = Components(net_sd=0.3, pretraining_patient_sd=0.2, residual_sd=0.5)
WIDE = Design(seeds=5, patients=10, slices=10)
#: name → (design, components, effect, what counts, metrics): `what(claims, truth)` is True for a counted study
CASES = {
    "best, null, 13 configurations, 3 seeds, 2 × 40 slices": (Design(seeds=3), NOISE, None, best_beats, ("psnr",)),
    "best, null, 13 configurations, 3 seeds, 2 × 40 slices, no configuration × patient term": (
        Design(seeds=3), PURE, None, best_beats, ("psnr",)),
    "best, null, 13 configurations, 5 seeds, 10 × 10 slices": (WIDE, NOISE, None, best_beats, ("psnr",)),
    "best, null, 13 configurations, 3 seeds, 2 × 40 slices, any of 3 metrics": (Design(seeds=3), NOISE, None,
                                                                              best_beats, ("psnr", "ssim", "rmse_hu")),
    "best, null, 13 configurations, 5 seeds, 10 × 10 slices, any of 3 metrics": (WIDE, NOISE, None, best_beats,
                                                                               ("psnr", "ssim", "rmse_hu")),
    "best, null, 19 configurations, 3 seeds, 6 × 5 slices": (Design(pretrainings=("imagenet", "medical", "random"),
                                                                    seeds=3, patients=6, slices=5), NOISE, None,
                                                             best_beats, ("psnr",)),
    "best, null, heavy-tailed networks (t3, SD 1 dB), 13 configurations, 4 seeds, 2 × 40 slices": (
        Design(seeds=4), Components(net_sd=1.0, net_df=3, config_patient_sd=0.2, residual_sd=0.5), None, best_beats,
        ("psnr",)),
    "other kinds, null, 13 configurations, 3 seeds, 2 × 40 slices, no configuration × patient term": (
        Design(seeds=3), PURE, None, other_firm, ("psnr",)),
    "other kinds, null, 13 configurations, 5 seeds, 10 × 10 slices": (WIDE, NOISE, None, other_firm, ("psnr",)),
    "pretraining claims, pretraining × patient SD 0.2, 2 × 40 slices, 5 seeds": (Design(seeds=5), PRE, None,
                                                                                pretraining_claim, ("psnr",)),
    "pretraining × patient SD 0.2, 2 × 40 slices: a claim not marked 'these test patients'": (
        Design(seeds=5), PRE, None, not_these_patients, ("psnr",)),
    "pretraining claims, pretraining × patient SD 0.2, 10 × 10 slices, 5 seeds": (WIDE, PRE, None, pretraining_claim,
                                                                                 ("psnr",)),
    "Ψ versus λ, null (no dependence on either), 3 seeds, 3 λ": (Design(seeds=3, levels=THREE), NOISE, None, psi_claim,
                                                                ("psnr",)),
    "power: Ψ versus λ, optimum at Ψ = 0.95 in every cell, 3 seeds": (Design(seeds=3, levels=THREE,
                                                                            lams=(0.001, 0.01, 0.1, 1.0)),
                                                                     NOISE, psi_optimum, psi_claim, ("psnr",)),
    "power: +1 dB medical encoder, 5 seeds, 2 × 40 slices": (Design(seeds=5), NOISE, medical(1.0),
                                                            found("pretraining=medical", "pretraining=imagenet"),
                                                            ("psnr",)),
    "power: +1 dB medical encoder, 5 seeds, 10 × 10 slices": (WIDE, NOISE, medical(1.0),
                                                             found("pretraining=medical", "pretraining=imagenet"),
                                                             ("psnr",)),
    "power: +0.5 dB medical encoder, 3 seeds, 10 × 10 slices": (Design(seeds=3, patients=10, slices=10), NOISE,
                                                               medical(0.5),
                                                               found("pretraining=medical", "pretraining=imagenet"),
                                                               ("psnr",)),
}


def _hits(name: str, reps: int, seed0: int) -> tuple[int, float]:
    design, comp, effect, what, metrics = CASES[name]
    t = time.perf_counter()
    return share(what, design, comp, effect, reps, seed0, metrics), time.perf_counter() - t


def rate(name: str, hits: int, reps: int, seconds: float) -> dict:
    lo, hi = proportion_confint(hits, reps, alpha=0.05, method="wilson")
    return {"case": name, "studies": reps, "share": hits / reps, "95% CI": f"[{lo:.3f}, {hi:.3f}]",
            "s per study": seconds / reps}


CHUNK = 100  # studies per job: a case's studies (seeds 0 … reps − 1) are split over the processes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--only", nargs="*", default=None, help="case names, or substrings of them")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--jobs", type=int, default=1, help="processes (each runs chunks of 100 studies)")
    ap.add_argument("--section", default="cases re-run with more studies", help="RESULTS.md section for --only runs")
    a = ap.parse_args()
    names = [n for n in CASES if not a.only or any(s == n or s not in CASES and s in n for s in a.only)]
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(n, min(CHUNK, a.reps - s0), s0) for n in names for s0 in range(0, a.reps, CHUNK)]
    with ProcessPoolExecutor(a.jobs) as pool:
        done = list(pool.map(_hits, *zip(*jobs)))
    rows = [rate(n, sum(h for (m, _, _), (h, _) in zip(jobs, done) if m == n), a.reps,
                 sum(t for (m, _, _), (_, t) in zip(jobs, done) if m == n)) for n in names]
    for r in rows:
        print(r, flush=True)
    if a.no_write:
        return
    from results_md import command, table, write_section

    body = ("Share of synthetic studies (analysis.simulate: per-network SD 0.3 dB, configuration × patient SD 0.2 dB, "
            "residual 0.5 dB unless the case says otherwise) with the counted claim, through "
            "`analysis.claims.study_claims` at α = 0.05; 95% Wilson intervals. Null cases count false claims "
            "(nominal ≤ 5%), each claim judged against the truth of the population it states (`patients`: the "
            "planted effects; `these_test_patients`, with fewer than 5 test patients: the planted effects plus the "
            "patient terms of the patients drawn); power cases count studies that find the planted effect.\n\n"
            + table(rows))
    title = "Benchmark 7: calibration of every claim kind" + (f" ({a.section})" if a.only else "")
    write_section(title, command(), body)


if __name__ == "__main__":
    main()
