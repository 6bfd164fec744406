"""The fast path of `study plan` (analysis.planning_fast, analysis.planning_judge) against the report's claims code:
on the same synthetic studies its judges give the report's p-values and decisions; its drawn statistics have the
distribution of those the report computes from per-image tables; where its assumptions fail the plan falls back to
per-image tables. (Power and false-claim rates of the two paths, and the recommendation against an independent
simulation of the report: tests/evidence/test_plan_recommendation.py; heavier: benchmarks/plan_check.py.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from analysis import planning_fast as fast
from analysis import planning_judge as pj
from analysis.claims import Settings, study_claims
from analysis.effects import level_label
from analysis.factors import design_networks
from analysis.judge import best_beats, other_firm
from analysis.planning import families
from analysis.simulate import Components, Design, study_tables

S = Settings(min_effect={"psnr": 0.3})
NOISE = Components(net_sd=0.3, config_patient_sd=0.15, pretraining_patient_sd=0.25, residual_sd=0.5)
IMAGES = Design(seeds=3, patients=2, slices=6)  # 13 configurations; 2 < min_patients: images within patients
PATIENTS = Design(levels=("block1_conv2", "block3_conv2"), pretrainings=("imagenet",), lams=(0.01, 0.1), seeds=3,
                  patients=6, slices=3)  # 5 configurations, patients the units (5 df: bootstrap max-t references)


def _analysed(design: Design, seed: int, family: str):
    """One study with `family`'s planted effect of δ (`big`: the best configuration's, of 5δ), as the report
    analyses it, and its fast-path Stats."""
    lay = fast.layout(design)
    effect = families(design, "psnr", 5 * S.effect("psnr") if family == "big" else S.effect("psnr"), S.alpha)[
        "best" if family == "big" else family][0]
    trials, images = study_tables(design, NOISE, effect, seed=seed)
    claims, tables, nets = study_claims(images, trials, ["psnr"], S)
    truth = trials.attrs["truth"]
    pop = nets["psnr"].population
    st = fast.from_networks(lay, nets["psnr"], truth["psnr"][pop].reindex(lay.labels).to_numpy() - 30.0)
    return lay, st, nets["psnr"], claims, tables, truth


def _levels_row(tables, design, factor):
    lv = tables["levels"]
    values = {"feature_level": design.levels, "pretraining": design.pretrainings, "lam": design.lams}[factor]
    return lv[(lv["factor"] == factor) & (lv["a"].astype(str) == level_label(values[0]))
              & (lv["b"].astype(str) == level_label(values[1]))]


@pytest.mark.parametrize("design", [IMAGES, PATIENTS], ids=["images", "patients"])
def test_the_fast_judges_give_the_reports_p_values_and_decisions_on_the_same_studies(design):
    """With the study's own reference draws, every p-value the fast judges compute is the report's; with the fast
    path's one reference per design (drawn from another study), they are close and the decisions agree."""
    lay = fast.layout(design)
    zero = np.zeros(len(lay.labels))
    shared = pj.references(lay, fast.networks(lay, fast.draw(lay, NOISE, zero, 1, np.random.default_rng(5), 5), 0))
    agree = total = beaten = 0
    for seed, family in enumerate(["lam", lay.factors[0], "best", "big"]):  # big: the best 5δ better
        lay, st, nets, claims, tables, truth = _analysed(design, seed, family)
        own = pj.references(lay, nets)
        for f in lay.factors:
            rec, est, p = pj.level_p(lay, st, own, f)
            row = _levels_row(tables, design, f)
            assert len(row) == (rec[0] == 0)  # the report writes a − b when a is its recommended level
            if len(row):
                assert est[0] == pytest.approx(row["estimate"].iloc[0]) and p[0] == pytest.approx(row["p_adj"].iloc[0])
        best, est, p = pj.vs_best_p(lay, st, own)
        vs = tables["vs_best"]
        assert lay.labels[best[0]] == vs["a"].iloc[0]
        assert p[0, lay.labels.get_indexer(vs["b"])] == pytest.approx(vs["p_adj"].to_numpy())
        imp = tables["importance"].dropna(subset=["pvalue"])
        assert pj.term_pvalues(lay, st)[0] == pytest.approx(imp["pvalue"].to_numpy())
        delta = S.effect("psnr")
        assert pj.any_term(lay, st, S.alpha)[0] == other_firm(claims, truth)
        flat = {"psnr": truth["psnr"] * 0 + 30.0}  # every configuration equal: whatever the best claim beats is false
        for t, fast_truth in ((truth, st.truth), (flat, np.zeros_like(st.truth))):
            beats = pj.best_beats(lay, replace(st, truth=fast_truth), own, delta, S.alpha, S.min_seeds)[0]
            assert beats == best_beats(claims, t)
            beaten += int(beats)
        for name, (_, judge) in families(design, "psnr", delta, S.alpha).items():  # the shared reference
            found = (pj.best_found(lay, st, shared, lay.labels.get_loc(_best(design)), S.alpha) if name == "best"
                     else pj.level_found(lay, st, shared, name, S.alpha))
            agree, total = agree + int(bool(found[0]) == judge(tables)), total + 1
        _, _, p_shared = pj.vs_best_p(lay, st, shared)
        assert np.abs(p_shared - p).max() < 0.03
    assert agree >= total - 1 and beaten  # the beaten rule was exercised


def _best(design: Design) -> str:
    from analysis.simulate import label

    return label(design.levels[0], design.pretrainings[0], design.lams[0])


@pytest.mark.parametrize("design", [IMAGES, PATIENTS], ids=["images", "patients"])
def test_drawn_statistics_have_the_distribution_of_the_reports(design):
    """Means, test-set deviations and mean squares drawn by planning_fast against those the report's
    design_networks computes from per-image tables of analysis.simulate (150 studies): the mean of each statistic
    within 4 Monte-Carlo SEs."""
    lay = fast.layout(design)
    drawn = fast.draw(lay, NOISE, np.zeros(len(lay.labels)), 4000, np.random.default_rng(0), S.min_patients)
    seen = [fast.from_networks(lay, design_networks(study_tables(design, NOISE, None, seed=s)[1], "psnr",
                                                    S.min_patients)[0]) for s in range(150)]
    assert {st.population for st in seen} == {drawn.population}
    cube = lay.cube.ravel()
    a, c = cube[0], cube[-1]  # the last configuration has the other pretraining where there is one
    stats = {"spread of the means": lambda st: st.means[:, cube].var(axis=1, ddof=1),
             "a contrast, squared": lambda st: (st.means[:, a] - st.means[:, c]) ** 2,
             "interactions, squared": lambda st: _interaction(st.dev[:, :, cube]),
             "ms_within": lambda st: st.ms_within, "ms_error": lambda st: st.ms_error}
    for name, fn in stats.items():
        x, y = np.concatenate([fn(st) for st in seen]), fn(drawn)
        se = np.sqrt(x.var() / len(x) + y.var() / len(y))
        assert abs(x.mean() - y.mean()) < 4 * se, (name, x.mean(), y.mean(), se)


def _interaction(dev: np.ndarray) -> np.ndarray:
    """Mean square of the configuration × unit deviations without the units' own main effect (image difficulty:
    in the report's, not drawn by the fast path; it cancels in every contrast)."""
    return ((dev - dev.mean(axis=2, keepdims=True)) ** 2).mean(axis=(1, 2))


def test_the_plan_falls_back_to_per_image_tables_where_the_fast_path_does_not_apply(monkeypatch):
    """Failed trials (an unbalanced design) or heavy-tailed network offsets: `applies` is false and `simulate`
    analyses per-image tables with the claims code; the plan says which it used."""
    from analysis import planning

    grid = Design(levels=("block1_conv2",), pretrainings=("imagenet",), lams=(0.1,), seeds=3, patients=1, slices=6)
    assert fast.applies(grid, NOISE)
    cases = [(replace(grid, failed_share=0.2), NOISE), (grid, Components(net_sd=0.3, net_df=4.0))]
    assert not any(fast.applies(d, c) for d, c in cases)

    def refuse(*a, **k):
        raise AssertionError("the fast path was used where it does not apply")

    monkeypatch.setattr(planning, "simulate_fast", refuse)
    for d, c in cases:
        power, false = planning.simulate(d, c, "psnr", S, reps=1)
        assert set(power) == {"best"} and 0 <= false <= 1
        pilot = planning.Pilot(d, {"psnr": c}, 0.01, None)
        out = planning.plan(pilot, "psnr", S, start=3, reps=1, max_seeds=3)
        assert out["simulated_from"] == "per-image tables"
    with pytest.raises(AssertionError, match="fast path"):
        planning.simulate(grid, NOISE, "psnr", S, reps=1)  # where it applies, it is the default
    assert planning.simulate(grid, NOISE, "psnr", S, reps=1, exact=True)  # unless asked for the exact path
