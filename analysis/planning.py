"""Planning a study's seeds for statistical power (`study plan`), by simulation with the report's own claims code.

From a pilot results folder (any finished study with ≥ 2 seeds on the same data), per metric: the variance
components of its per-network analysis (between-network SD, the configuration × test-unit term, the image
residual) become `analysis.simulate.Components`, and its fixed-λ grid (feature levels × pretrainings × λ, the
baseline, its test patients and slices) an `analysis.simulate.Design`. For each candidate number of seeds,
synthetic studies are judged as the report will judge them: from their network-level statistics with the report's
estimators and max-t references (analysis.planning_fast / planning_judge, where the design is balanced and the
components normal), otherwise (or with `exact`) as per-image tables through `analysis.claims.study_claims`:

- power per claim family: the share of studies whose family test (the report's max-t) separates a planted effect
  of the metric's smallest effect that matters (`analysis.min_effect`, δ) at α: one level of each design factor
  better by δ than the others, and one configuration better than all others by δ against the pixel-only
  baseline. A `better` claim also needs the estimate itself ≥ δ, which for a true effect of exactly δ happens
  about half the time whatever the seeds (Methods), so the plan counts the test's power, not that coin;
- the false-claim rate: the share of null studies with any false claim (best, better/worse/depends, a factor
  term significant).

A closed-form guess (the CLI's: the max-t over all pairs, noncentral t) starts the search (`search`: steps 1, 2,
4, … then bisection); the cheapest candidate whose smallest family power reaches the target within the budget is
recommended. Seeded: the same inputs give the same plan. Ψ-target arms and loss families are not simulated
(their fixed-λ grid is).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from analysis import planning_fast as fast
from analysis.claims import Settings, study_claims
from analysis.effects import level_label
from analysis.judge import best_beats, other_firm
from analysis.load import BASELINE, higher_is_better
from analysis.planning_fast import FACTORS, applies
from analysis.simulate import METRIC_SCALE, Components, Design, label, study_tables


@dataclass(frozen=True)
class Pilot:
    """What a pilot tells the plan, per metric: its components (in dB-equivalent units of analysis.simulate) and
    its grid; and the cost of one trial."""

    design: Design
    components: dict[str, Components]
    trial_hours: float  # median wall_s of its finished trials, in hours
    disk_gb: float | None  # median size of a finished trial's folder


@dataclass(frozen=True)
class Candidate:
    seeds: int
    power: dict[str, float]  # family → share of studies finding the planted effect
    false_claim: float
    trials: int
    trial_hours: float
    disk_gb: float | None

    @property
    def min_power(self) -> float:
        return min(self.power.values()) if self.power else float("nan")

    def as_json(self) -> dict:
        return {**asdict(self), "min_power": self.min_power}


def components_of(variance, metric: str) -> Components:
    """Variance components of one metric's per-network analysis (analysis.networks.Variance) in the units of
    analysis.simulate (dB for PSNR; the metric's own unit divided by its METRIC_SCALE factor)."""
    unit = abs(METRIC_SCALE.get(metric, (0.0, 1.0))[1])
    e = float(np.nan_to_num(variance.ms_error))
    net = max(float(np.nan_to_num(variance.ms_within)) - e / variance.n_images, 0.0)
    unit_var = variance.test_term / variance.kappa if variance.kappa > 0 else 0.0
    patients = variance.population == "patients"
    return Components(net_sd=np.sqrt(net) / unit, config_patient_sd=np.sqrt(unit_var) / unit if patients else 0.0,
                      config_image_sd=0.0 if patients else np.sqrt(unit_var) / unit, residual_sd=np.sqrt(e) / unit)


def design_of(trials: pd.DataFrame, per_image: pd.DataFrame, seeds: int = 3) -> Design:
    """The fixed-λ grid of `trials` (a pilot's, or a planned study's grid in the same columns), the test patients
    and slices per patient of `per_image`, as an analysis.simulate.Design."""
    done = trials[(trials["status"] == "finished") & (trials["configuration"] != BASELINE)]
    if "psi_target" in done:
        done = done[done["psi_target"].isna()]
    levels = tuple(sorted(done["feature_level"].astype(str).unique()))
    pres = tuple(sorted(done["pretraining"].astype(str).unique()))
    lams = tuple(sorted(float(v) for v in done["lam"].unique() if v > 0))
    images = per_image.drop_duplicates("image_id")
    patients = images["patient"].nunique() if "patient" in images else 1
    return Design(levels=levels, pretrainings=pres, lams=lams, seeds=seeds, patients=int(patients),
                  slices=int(round(len(images) / max(patients, 1))),
                  baseline=bool((trials["configuration"] == BASELINE).any()))


def _planted(factor: str, level, delta: float):
    index = {"feature_level": 0, "pretraining": 1, "lam": 2}[factor]
    return lambda lv, p, lam, psi: delta if lam and (lv, p, lam)[index] == level else 0.0


def _found_level(factor: str, a, b, alpha: float, sign: float = 1.0):
    """The level contrast a − b is separated at α in a's favour (the family's max-t test), from the levels table;
    `sign` −1 for a lower-is-better metric (a's favour is then a negative estimate)."""

    def judge(tables: dict) -> bool:
        t = tables.get("levels")
        if t is None:
            return False
        r = t[(t["factor"] == factor) & (t["a"].astype(str) == level_label(a)) & (t["b"].astype(str) == level_label(b))]
        return bool(len(r) and (r["p_adj"] < alpha).any() and (sign * r["estimate"] > 0).any())
    return judge


def _found_best(config: str, alpha: float):
    """`config` is the best, separated at α from the pixel-only baseline (the configurations-against-the-best
    family), from the vs_best table."""
    def judge(tables: dict) -> bool:
        t = tables.get("vs_best")
        if t is None:
            return False
        r = t[(t["a"] == config) & (t["b"] == BASELINE)]
        return bool(len(r) and (r["p_adj"] < alpha).any())
    return judge


def families(design: Design, metric: str, delta: float, alpha: float = 0.05) -> dict[str, tuple]:
    """family → (planted effect, judge) for each design factor with ≥ 2 levels and for the best configuration."""
    d = delta / abs(METRIC_SCALE.get(metric, (0, 1))[1])  # in dB: + is better on every simulated metric
    sign = 1.0 if higher_is_better(metric) else -1.0
    out = {}
    for factor, levels in zip(FACTORS, (design.levels, design.pretrainings, design.lams)):
        if len(levels) >= 2:
            out[factor] = (_planted(factor, levels[0], d), _found_level(factor, levels[0], levels[1], alpha, sign))
    lv, p, lam = design.levels[0], design.pretrainings[0], design.lams[0]
    out["best"] = (lambda a, b, c, psi: d if (a, b, c) == (lv, p, lam) else 0.0, _found_best(label(lv, p, lam), alpha))
    return out


def simulate(design: Design, comp: Components, metric: str, settings: Settings, reps: int,
             seed: int = 0, exact: bool = False) -> tuple[dict[str, float], float]:
    """(power per family, false-claim rate) of `design` by `reps` synthetic studies each, seeded: from their
    network-level statistics (analysis.planning_fast) where its assumptions hold, unless `exact`; else per-image
    tables through the report's claims code."""
    if not exact and applies(design, comp):
        return simulate_fast(design, comp, metric, settings, reps, seed)
    delta = settings.effect(metric)
    power = {}
    for i, (name, (effect, judge)) in enumerate(families(design, metric, delta, settings.alpha).items()):
        hits = 0
        for r in range(reps):
            trials, images = study_tables(design, comp, effect, seed=seed + 1000 * (i + 1) + r, metrics=(metric,))
            hits += judge(study_claims(images, trials, [metric], settings)[1])
        power[name] = hits / reps
    false = 0
    for r in range(reps):
        trials, images = study_tables(design, comp, None, seed=seed + r, metrics=(metric,))
        claims = study_claims(images, trials, [metric], settings)[0]
        false += bool(best_beats(claims, trials.attrs["truth"]) or other_firm(claims, trials.attrs["truth"]))
    return power, false / reps


def simulate_fast(design: Design, comp: Components, metric: str, settings: Settings, reps: int,
                  seed: int = 0) -> tuple[dict[str, float], float]:
    """`simulate` from drawn network-level statistics (analysis.planning_fast), the family reference draws once
    per design from one drawn study, seeded."""
    from analysis import planning_judge as pj

    lay = fast.layout(design)
    delta, alpha, few = settings.effect(metric), settings.alpha, settings.min_patients
    rng = lambda i: np.random.default_rng([seed, design.seeds, i])
    zero = np.zeros(len(lay.labels))
    refs = pj.references(lay, fast.networks(lay, fast.draw(lay, comp, zero, 1, rng(0), few), 0, metric))
    best = lay.labels.get_loc(label(design.levels[0], design.pretrainings[0], design.lams[0]))

    def found(name: str, st) -> np.ndarray:
        return pj.best_found(lay, st, refs, best, alpha) if name == "best" else pj.level_found(lay, st, refs, name, alpha)

    def false(st) -> np.ndarray:
        d = delta / abs(METRIC_SCALE.get(metric, (0, 1))[1])  # δ in dB
        return pj.any_term(lay, st, alpha) | pj.best_beats(lay, st, refs, d, alpha, settings.min_seeds)

    def count(judge, effect: np.ndarray, stream: int) -> int:
        return sum(int(judge(st).sum()) for st in fast.batches(lay, comp, effect, reps, rng(stream), few))

    fams = families(design, metric, delta, alpha)
    power = {name: count(lambda st, n=name: found(n, st), fast.planted(lay, effect), i + 1) / reps
             for i, (name, (effect, _)) in enumerate(fams.items())}
    return power, count(false, zero, len(fams) + 1) / reps


def candidate(pilot: Pilot, metric: str, seeds: int, settings: Settings, reps: int, seed: int,
              per_seed: int | None = None, exact: bool = False) -> Candidate:
    """One design: its simulated power and false-claim rate (`simulate`), and the cost of `per_seed` trials per seed
    (the whole study's configurations; default: the simulated grid's)."""
    design = replace(pilot.design, seeds=seeds)
    power, false = simulate(design, pilot.components[metric], metric, settings, reps, seed, exact)
    n = (per_seed or len(design.configurations())) * seeds
    return Candidate(seeds, power, false, n, n * pilot.trial_hours,
                     None if pilot.disk_gb is None else n * pilot.disk_gb)


def plan(pilot: Pilot, metric: str, settings: Settings, start: int, power: float = 0.8,
         budget_h: float | None = None, max_seeds: int = 20, reps: int = 100, seed: int = 0,
         per_seed: int | None = None, exact: bool = False) -> dict:
    """Candidates from `start` seeds (the closed-form guess), searched (`search`) until the cheapest one whose
    smallest family power reaches `power` is bracketed by the design one seed fewer; the recommendation (None if
    none reaches it within the budget), and how the studies were simulated (`simulate`)."""
    seen: dict[int, Candidate] = {}

    def at(n: int) -> Candidate:
        if n not in seen:
            seen[n] = candidate(pilot, metric, n, settings, reps, seed, per_seed, exact)
        return seen[n]

    search(lambda n: at(n).min_power >= power, start, max(2, settings.min_seeds), max_seeds)
    designs = [seen[k] for k in sorted(seen)]
    ok = [c for c in designs if c.min_power >= power and (budget_h is None or c.trial_hours <= budget_h)]
    best = min(ok, key=lambda c: c.trial_hours) if ok else None
    how = "per-image tables" if exact or not applies(pilot.design, pilot.components[metric]) else "network statistics"
    return {"metric": metric, "power_target": power, "budget_trial_hours": budget_h, "simulated_from": how,
            "recommended": best.as_json() if best else None, "designs": [c.as_json() for c in designs]}


def search(ok, start: int, lo: int, hi: int) -> int | None:
    """The fewest seeds n in lo…hi with ok(n), for ok monotone in n: from `start`, steps of 1, 2, 4, … towards the
    answer until it is bracketed, then bisection; ok(n − 1) is asked too (n > lo). None when ok(hi) is false."""
    n = int(np.clip(start, lo, hi))
    good, bad, step = (n, None, 1) if ok(n) else (None, n, 1)
    while good is None:  # up: the last failing design `bad`
        if bad >= hi:
            return None
        m = min(hi, bad + step)
        good, bad, step = (m, bad, step) if ok(m) else (None, m, 2 * step)
    while bad is None and good > lo:  # down: the last passing design `good`
        m = max(lo, good - step)
        good, bad, step = (m, None, 2 * step) if ok(m) else (good, m, step)
    while bad is not None and good - bad > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    return good


def read_pilot(results_dir, min_patients: int, metrics: list[str] | None = None) -> tuple[Pilot, pd.DataFrame]:
    """The Pilot of a finished results folder (its own grid as the design) and its per-image table."""
    from pathlib import Path

    from analysis.compute import read_study
    from analysis.factors import design_networks
    from study.errors import StudyError

    st = read_study(results_dir, metrics)
    per_image = st.per_image
    if per_image.empty or per_image.groupby("configuration")["run_key"].nunique().max() < 2:
        raise StudyError(f"{results_dir}: a pilot needs finished trials with ≥ 2 seeds of a configuration")
    comps = {m: components_of(design_networks(per_image, m, min_patients)[0].variance, m)
             for m in st.metrics if m in METRIC_SCALE}
    done = st.trials[st.trials["status"] == "finished"]
    wall = float(done["wall_s"].median()) / 3600 if "wall_s" in done and done["wall_s"].notna().any() else float("nan")
    sizes = [sum(f.stat().st_size for f in (Path(results_dir) / "trials" / k).rglob("*") if f.is_file())
             for k in done["run_key"] if (Path(results_dir) / "trials" / k).is_dir()]
    disk = float(np.median(sizes)) / 1e9 if sizes else None
    return Pilot(design_of(st.trials, per_image), comps, wall, disk), per_image


def prior_components(prior, metric: str) -> Components:
    """Stated components (study.spec.Prior, in the metric's unit) in the units of analysis.simulate."""
    unit = abs(METRIC_SCALE.get(metric, (0.0, 1.0))[1])
    return Components(net_sd=prior.network_sd / unit, config_patient_sd=prior.patient_sd / unit,
                      config_image_sd=prior.image_sd / unit, residual_sd=prior.residual_sd / unit)


def prior_pilot(grid: pd.DataFrame, priors: dict, trial_hours: float, disk_gb: float | None) -> Pilot:
    """A Pilot from the spec's `analysis.prior` (every metric stated there) and the study's grid."""
    first = next(iter(priors.values()))
    images = pd.DataFrame({"image_id": [f"p{p}-{i}" for p in range(first.patients) for i in range(first.slices)],
                           "patient": [f"P{p}" for p in range(first.patients) for _ in range(first.slices)]})
    comps = {m: prior_components(v, m) for m, v in priors.items() if m in METRIC_SCALE}
    return Pilot(design_of(grid, images), comps, trial_hours, disk_gb)
