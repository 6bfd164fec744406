"""Adaptive seeds (issue #29): the stage-2 decision (analysis.adaptive) on synthetic stage-1 networks, the spec's
`adaptive:` section, and the plan of an adaptive study (stage 1, then what its stage record added)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from analysis.adaptive import final_alpha, seeds_for, stage_two
from analysis.claims import Settings
from analysis.simulate import Components, Design, label, study_tables
from helpers import tiny_spec, write_spec
from study.errors import StudyError

STAGE1 = Design(seeds=3, patients=10, slices=10)
NOISE = Components(net_sd=0.5, config_patient_sd=0.1, residual_sd=0.5)
SETTINGS = Settings(min_effect={"psnr": 1.0})


def drowned(lv, p, lam, psi):
    return -4.0 if lam == 0.1 else 0.0  # the λ = 0.1 arms far below the rest


def test_stage_two_adds_the_variances_seeds_to_the_undecided_configurations_only():
    trials, images = study_tables(STAGE1, NOISE, drowned, seed=3)
    st = stage_two(images, trials, "psnr", SETTINGS, power=0.8, min_seeds=3, max_seeds=14)
    v = st.variance
    assert v["net_var_planned"] > v["net_var"] and v["df"] == 13 * 2  # planned at the variance's upper 80% bound
    n, _ = seeds_for(13, v["net_var_planned"], v["test_term"], 1.0, 0.04, 0.8, 3, 14)
    assert st.seeds_needed == n and 3 < n <= 14
    worse = {label(lv, p, 0.1) for lv in STAGE1.levels for p in STAGE1.pretrainings}
    for c, seeds in st.seeds.items():
        if c in worse:  # 4 dB below the leader with 3 seeds each: decided at stage 1, no more seeds
            assert seeds == 3 and st.why[c].startswith("decided at stage 1"), (c, st.why[c])
        else:
            assert seeds == n, (c, st.why[c])
    assert st.added({c: 3 for c in st.seeds}) == {c: n - 3 for c in st.seeds if c not in worse}


def test_the_number_of_seeds_comes_from_the_variance_not_from_the_effects():
    """The same networks with the effects planted differently (every offset the same): the same n*."""
    a = stage_two(*study_tables(STAGE1, NOISE, drowned, seed=5)[::-1], "psnr", SETTINGS, power=0.8, min_seeds=3,
                  max_seeds=14)
    b = stage_two(*study_tables(STAGE1, NOISE, lambda *x: 2.0 * (x[2] == 0.01), seed=5)[::-1], "psnr", SETTINGS,
                  power=0.8, min_seeds=3, max_seeds=14)
    assert a.seeds_needed == b.seeds_needed and a.variance["net_var"] == pytest.approx(b.variance["net_var"])
    assert a.seeds != b.seeds  # but which configurations get them does depend on the stage-1 screen


def test_no_stage_two_when_no_number_of_seeds_would_do_or_stage_one_already_does():
    trials, images = study_tables(STAGE1, NOISE, None, seed=2)
    tiny = stage_two(images, trials, "psnr", Settings(min_effect={"psnr": 0.05}), power=0.8, min_seeds=3,
                     max_seeds=8)  # 0.05 dB is within the test set's own noise: seeds cannot reach it
    assert tiny.seeds_needed is None and set(tiny.seeds.values()) == {3}
    assert tiny.variance["power_limit"] < 0.8 and next(iter(tiny.why.values())).startswith("futile")
    short = stage_two(images, trials, "psnr", Settings(min_effect={"psnr": 0.6}), power=0.8, min_seeds=3,
                      max_seeds=5)  # seeds could reach it, but not within max_seeds: the most allowed
    assert short.seeds_needed == 5 and short.power < 0.8 and short.variance["power_limit"] >= 0.8
    assert max(short.seeds.values()) == 5
    big = stage_two(images, trials, "psnr", Settings(min_effect={"psnr": 5.0}), power=0.8, min_seeds=3, max_seeds=8)
    assert big.seeds_needed == 3 and set(big.seeds.values()) == {3} and "already give" in big.why[big.leader]


def test_an_adaptive_studys_claims_are_made_at_what_the_screen_left(tmp_path):
    from analysis.settings import settings_of

    assert final_alpha(0.05, None) == pytest.approx(0.04) and final_alpha(0.05, 0.02) == pytest.approx(0.03)
    assert settings_of(tmp_path, {"analysis": {"alpha": 0.05}, "adaptive": {"min_seeds": 3}}).alpha == \
        pytest.approx(0.04)
    assert settings_of(tmp_path, {"analysis": {"alpha": 0.05}}).alpha == 0.05


@pytest.mark.parametrize("adaptive, extra, message", [
    ({"min_seeds": 4, "max_seeds": 4}, {}, "max_seeds (4) must be above min_seeds (4)"),
    ({"min_seeds": 2, "max_seeds": 5}, {}, "adaptive.min_seeds (2) is below analysis.min_seeds (3)"),
    ({"metric": "ssim"}, {"metrics": ["psnr"]}, "adaptive.metric: 'ssim' is not one of metrics"),
    ({"screen_alpha": 0.05}, {}, "adaptive.screen_alpha (0.05) must be below analysis.alpha"),
])
def test_a_bad_adaptive_section_is_a_one_line_error(tmp_path, adaptive, extra, message):
    from study.spec import load_spec

    path = write_spec(tmp_path, tiny_spec(tmp_path, adaptive=adaptive, **extra))
    with pytest.raises(StudyError) as err:
        load_spec(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_plan_of_an_adaptive_study_is_stage_one_then_what_its_record_added(tmp_path):
    from study.planning.plan import plan
    from study.spec import load_spec

    raw = tiny_spec(tmp_path, factors={"lam": [0, 0.1], "seed": [7]}, adaptive={"min_seeds": 3, "max_seeds": 5})
    spec = load_spec(write_spec(tmp_path, raw))
    p = plan(spec)
    assert sorted((t.configuration, t.seed) for t in p.trials) == sorted(
        (c, s) for c in ("pixel-only", "block1_conv2 · random · λ=0.1") for s in (7, 8, 9))
    assert set(p.stage.values()) == {1} and all(r["stage"] == 1 for r in p.rows())
    record = {"seeds": [7, 8, 9, 10, 11], "stages": [{"stage": 1}, {"stage": 2, "added": {"pixel-only": [10, 11]}}]}
    p.out.mkdir(parents=True)
    (p.out / "stages.json").write_text(json.dumps(record))
    p2 = plan(spec)
    added = {(t.configuration, t.seed) for t in p2.trials if p2.stage[t.run_key] == 2}
    assert added == {("pixel-only", 10), ("pixel-only", 11)} and len(p2.trials) == 8
    same = {t.run_key for t in p.trials} <= {t.run_key for t in p2.trials}
    assert same  # stage 1's run keys do not change when stage 2 is added
    (p.out / "stages.json").write_text(json.dumps({**record, "seeds": [0, 1, 2, 3, 4]}))
    with pytest.raises(StudyError, match="its stage 1 seeds"):
        plan(spec)
    spec2 = load_spec(write_spec(tmp_path, replace_factor(raw, seed=[7, 8, 9])))
    assert {t.run_key for t in plan(spec2, tmp_path / "fixed").trials} >= {t.run_key for t in p.trials}


def replace_factor(raw: dict, **factors) -> dict:
    """The spec without `adaptive:`, its factors changed: a fixed study of the same seeds has the same run keys."""
    out = {k: v for k, v in raw.items() if k != "adaptive"}
    return {**out, "factors": {**out["factors"], **factors}}
