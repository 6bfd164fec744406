"""Judging claims against the truth of a simulated study (analysis.simulate): does a study hold a false claim of a
kind, or find a planted effect? Each claim is judged against the true means of the population it states. Used by
the calibration benchmark and tests (false-claim rate and power by Monte Carlo through the report's own claims code).
"""

from __future__ import annotations

import pandas as pd

ALPHA = 0.05


def share(judge, design, components, effect=None, reps: int = 100, seed0: int = 0, metrics=("psnr",),
          settings=None) -> int:
    """How many of `reps` synthetic studies (seeds seed0, seed0 + 1, …) `judge(claims, truth)` counts."""
    from analysis.claims import Settings, study_claims
    from analysis.simulate import study_tables

    hits = 0
    for r in range(reps):
        trials, images = study_tables(design, components, effect, seed=seed0 + r, metrics=tuple(metrics))
        claims = study_claims(images, trials, list(metrics), settings or Settings())[0]
        hits += bool(judge(claims, trials.attrs["truth"]))
    return hits


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
    """A firm claim (better/worse/depends, or a factor term significant) that the truth, over the population the
    claim covers, does not bear out, where nothing is planted. Where that truth is flat (every configuration's mean
    equal: the patients), every firm claim is false. Over these test patients their own configuration × patient
    terms make the true means differ, and a claim about them is judged against those means: a level better/worse
    claim is false when the levels' true gap has the other sign or none; a term or a depends claim is then true of
    these patients."""
    for c in claims:
        term = c["kind"] == "factor_importance" and (c["p_adj"] or 1) < ALPHA
        if not (term or c["kind"] in ("better", "worse", "depends") and c["subject"] != "Ψ"):
            continue
        t = _truth(truth, c)
        if float(t.max() - t.min()) <= 1e-12:
            return True
        if c["kind"] in ("better", "worse") and c.get("factor"):
            a, b = c["subject"].split("=", 1)[1], c["reference"].split("=", 1)[1]
            gap = _sign(c["metric"]) * level_gap(truth, c, c["factor"], a, b)
            if (gap <= 1e-12) if c["kind"] == "better" else (gap >= -1e-12):
                return True
    return False


def level_gap(truth: dict, c: dict, factor: str, a: str, b: str) -> float:
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
            gap = _sign(c["metric"]) * level_gap(truth, c, "pretraining", a, b)
            if (gap <= 1e-12) if c["kind"] == "better" else (gap >= -1e-12):
                return True
        if c["kind"] == "factor_importance" and c["subject"] == "pretraining" and (c["p_adj"] or 1) < ALPHA:
            if abs(level_gap(truth, c, "pretraining", "imagenet", "medical")) <= 1e-12:
                return True
    return False


def not_these_patients(claims: list[dict], truth: dict) -> bool:
    """A claim that does not say it holds for these test patients only."""
    return any(c.get("population") != "these_test_patients" for c in claims)


def psi_claim(claims: list[dict], truth: dict) -> bool:
    return any(c["subject"] == "Ψ" and c["kind"] in ("better", "worse") for c in claims)


def found(subject: str, reference: str):
    """A judge: the study claims `subject` better than `reference`."""
    return lambda claims, truth: any(c["kind"] == "better" and c["subject"] == subject and c["reference"] == reference
                                     for c in claims)


