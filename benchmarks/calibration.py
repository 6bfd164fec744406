"""Benchmark 7: is every claim kind calibrated? Monte Carlo over synthetic studies (analysis.simulate) with no effect
or a planted one, through the same claims code the report uses (analysis.claims.study_claims): the share of studies
with a false claim of each kind (null designs) and the share that find a planted effect (power), with 95% Wilson
intervals. Run: python benchmarks/calibration.py [--reps N] [--only NAME ...] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.claims import Settings, study_claims
from analysis.simulate import Components, Design, study_tables

NOISE = Components(net_sd=0.3, config_patient_sd=0.2, residual_sd=0.5)
ALPHA = 0.05


def _truth(truth: dict, c: dict) -> pd.Series:
    """The true configuration means of the claim's metric over the population the claim covers."""
    return truth[c["metric"]][c.get("population", "patients")]


def _sign(metric: str) -> float:
    return -1.0 if metric == "rmse_hu" else 1.0


def best_beats(claims: list[dict], truth: dict) -> bool:
    """A `best` claim that beats a configuration (one not in `tied`) whose true mean, over the population the claim
    covers, is at least as good."""
    for c in claims:
        if c["kind"] == "best":
            t, sign = _truth(truth, c), _sign(c["metric"])
            if any(sign * (t[c["subject"]] - t[x]) <= 1e-12 for x in set(c["others"]) - set(c["tied"])):
                return True
    return False


def other_firm(claims: list[dict], truth: dict) -> bool:
    """Any better/worse/depends claim, or a factor term significant (all false where nothing is planted)."""
    return any(c["kind"] in ("better", "worse", "depends") and c["subject"] != "Ψ"
               or (c["kind"] == "factor_importance" and (c["p_adj"] or 1) < ALPHA) for c in claims)


def _level_gap(truth: dict, c: dict, factor: str, a: str, b: str) -> float:
    t = _truth(truth, c).drop("pixel-only", errors="ignore")
    level = t.index.to_series().map(lambda s: _level_of(s, factor))
    return float(t[level == a].mean() - t[level == b].mean())


def _level_of(config: str, factor: str) -> str:
    level, pre, lam = config.split(" · ")
    return {"feature_level": level, "pretraining": pre, "lam": lam.removeprefix("λ=")}[factor]


def pretraining_claim(claims: list[dict], truth: dict) -> bool:
    """A pretraining level claimed better whose true mean (over the claim's population) is not, or the pretraining
    term significant where pretraining has no true effect."""
    for c in claims:
        if c["kind"] in ("better", "worse") and c.get("factor") == "pretraining":
            a, b = c["subject"].split("=", 1)[1], c["reference"].split("=", 1)[1]
            gap = _sign(c["metric"]) * _level_gap(truth, c, "pretraining", a, b)
            if (gap <= 1e-12) if c["kind"] == "better" else (gap >= -1e-12):
                return True
        if c["kind"] == "factor_importance" and c["subject"] == "pretraining" and (c["p_adj"] or 1) < ALPHA:
            if abs(_level_gap(truth, c, "pretraining", "imagenet", "medical")) <= 1e-12:
                return True
    return False


def not_these_patients(claims: list[dict], truth: dict) -> bool:
    """A claim that does not say it holds for these test patients only."""
    return any(c.get("population") != "these_test_patients" for c in claims)


def psi_claim(claims: list[dict], truth: dict) -> bool:
    return any(c["subject"] == "Ψ" and c["kind"] in ("better", "worse") for c in claims)


def found(subject: str, reference: str):
    return lambda claims, truth: any(c["kind"] == "better" and c["subject"] == subject and c["reference"] == reference
                                     for c in claims)


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


def rate(name: str, reps: int, seed0: int = 0) -> dict:
    design, comp, effect, what, metrics = CASES[name]
    hits, t = 0, time.perf_counter()
    for r in range(reps):
        trials, images = study_tables(design, comp, effect, seed=seed0 + r, metrics=metrics)
        hits += bool(what(study_claims(images, trials, list(metrics), Settings())[0], trials.attrs["truth"]))
    lo, hi = proportion_confint(hits, reps, alpha=0.05, method="wilson")
    return {"case": name, "studies": reps, "share": hits / reps, "95% CI": f"[{lo:.3f}, {hi:.3f}]",
            "s per study": (time.perf_counter() - t) / reps}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--only", nargs="*", default=None, help="substrings of case names")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    names = [n for n in CASES if not a.only or any(s in n for s in a.only)]
    rows = []
    for n in names:
        rows.append(rate(n, a.reps))
        print(rows[-1], flush=True)
    if a.no_write:
        return
    from results_md import table, write_section

    body = ("Share of synthetic studies (analysis.simulate: per-network SD 0.3 dB, configuration × patient SD 0.2 dB, "
            "residual 0.5 dB unless the case says otherwise) with the counted claim, through "
            "`analysis.claims.study_claims` at α = 0.05; 95% Wilson intervals. Null cases count false claims "
            "(nominal ≤ 5%), each claim judged against the truth of the population it states (`patients`: the "
            "planted effects; `these_test_patients`, with fewer than 5 test patients: the planted effects plus the "
            "patient terms of the patients drawn); power cases count studies that find the planted effect.\n\n"
            + table(rows))
    write_section("Benchmark 7: calibration of every claim kind", f"python benchmarks/calibration.py --reps {a.reps}",
                  body)


if __name__ == "__main__":
    main()
