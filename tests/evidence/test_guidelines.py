"""Guidelines with the trained network as the unit: calibration and power by Monte Carlo, directions, the list."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.formula.api as smf

from analysis.claims import Settings, study_claims
from analysis.networks import network_means, seeds_needed
from analysis.report import update_report

from helpers.synthetic import results_folder, tables

FIRM = {"better", "worse", "depends"}
FIVE = tuple(range(5))


def _claims(seed, metrics=("psnr",), **kw):
    trials, images = tables(seed=seed, **kw)
    return study_claims(images, trials, list(metrics), Settings())[0]


def medical_plus_one(level, pre, lam):
    return 1.0 if lam and pre == "medical" else 0.0


def test_null_studies_claim_a_difference_at_most_at_the_nominal_rate():
    """No configuration effect, per-network SD 0.3 dB, 5 seeds, 30 images, 9 configurations (the issue's check)."""
    hits = [bool({c["kind"] for c in _claims(i, seeds=FIVE, net_sd=0.3)} & FIRM) for i in range(40)]
    assert np.mean(hits) <= 0.10, np.mean(hits)


def test_null_studies_with_patient_clustering_stay_calibrated():
    """6 patients × 10 slices, a configuration × patient effect of SD 0.4 dB and little seed luck: the image-blocked
    Wilcoxon would call most of these; the network analysis, generalising over patients, must not."""
    hits = [bool({c["kind"] for c in _claims(i, seeds=FIVE, net_sd=0.1, patients=6, n_images=60, patient_sd=0.4)}
                 & FIRM) for i in range(30)]
    assert np.mean(hits) <= 0.10, np.mean(hits)


def test_with_few_patients_every_claim_holds_for_these_patients_only():
    """2 patients (< min_patients): no test across patients exists; the same configuration × patient effects are
    then real differences on these patients, and every claim says so."""
    claims = _claims(0, seeds=FIVE, net_sd=0.1, patients=2, n_images=60, patient_sd=0.4)
    assert claims and {c["population"] for c in claims} == {"these_test_patients"}
    assert all("images of these test patients random" in c["test"] for c in claims if c["kind"] != "insufficient_replication"
               and c["subject"] != "Ψ")
    wide = _claims(0, seeds=FIVE, net_sd=0.1, patients=6, n_images=60, patient_sd=0.4)
    assert {c["population"] for c in wide} == {"patients"}


def test_two_seeds_say_replication_is_insufficient_for_claims_about_configurations():
    """2 seeds per configuration: a claim about configurations (the best, a pair) rests on 2 networks a side and is
    withheld; a factor level averaged over 4 configurations rests on 8 a side and is made (replication per claim)."""
    for i in range(10):
        claims = _claims(i, seeds=(0, 1), net_sd=0.3, effect=medical_plus_one)
        assert not any(c["kind"] in FIRM and c.get("factor") is None and c["subject"] != "Ψ" for c in claims)
        assert not any(c["kind"] == "best" for c in claims)
        rep = [c for c in claims if c["kind"] == "insufficient_replication" and c["subject"] == "seeds per configuration"]
        assert len(rep) == 1 and rep[0]["seeds"] == 2 and rep[0]["seeds_needed"] >= 2
        best = [c for c in claims if c.get("would_be") == "best"]
        assert best and all(c["networks_per_side"] == pytest.approx(2.0) for c in best)
        level = [c for c in claims if c["subject"] == "pretraining=medical" and c["reference"] == "pretraining=imagenet"]
        assert level and level[0]["networks_per_side"] == pytest.approx(8.0)
    assert sum(c["kind"] == "better" for i in range(10) for c in _claims(i, seeds=(0, 1), net_sd=0.3,
                                                                           effect=medical_plus_one)
               if c["subject"] == "pretraining=medical") >= 8


def test_a_planted_one_db_effect_is_found():
    found = 0
    for i in range(40):
        claims = _claims(i, seeds=FIVE, net_sd=0.3, effect=medical_plus_one)
        found += any(c["kind"] == "better" and c["subject"] == "pretraining=medical"
                     and c["reference"] == "pretraining=imagenet" for c in claims)
    assert found / 40 >= 0.8


def test_claims_agree_in_direction_estimate_and_interval():
    """Skewed per-image differences: the median says one thing, the mean another; the claim follows one estimate."""
    trials, images = tables(seed=3, seeds=FIVE, net_sd=0.2, effect=medical_plus_one)
    rng = np.random.default_rng(0)
    med = images["pretraining"] == "medical"
    # medical: most images slightly better, a few much worse (the mean effect is negative)
    bump = np.where(rng.random(len(images)) < 0.8, 0.3, -6.0)
    images.loc[med, "psnr"] = images.loc[med, "psnr"] - 1.0 + bump[med.to_numpy()]
    claims = study_claims(images, trials, ["psnr", "rmse_hu"], Settings())[0]
    for c in claims:
        if c["kind"] in ("better", "worse", "depends") and c["subject"] != "Ψ":
            assert c["ci_low"] <= c["estimate"] <= c["ci_high"]
            assert c["ci_low"] > 0 or c["ci_high"] < 0, c  # significant: the interval excludes 0
            assert abs(c["estimate"]) >= c["min_effect"]
            higher = c["metric"] != "rmse_hu"
            assert (c["estimate"] > 0) == (higher == (c["kind"] != "worse")), c
    pre = [c for c in claims if c["metric"] == "psnr" and c.get("factor") == "pretraining"]
    assert pre and pre[0]["subject"] == "pretraining=imagenet"  # the mean, not the median, decides


def test_t_on_network_means_equals_ols_when_the_test_set_adds_no_error():
    """With no per-image noise the configuration × image interaction is 0 and the contrast is the OLS t-test of
    per-network means with a pooled variance."""
    trials, images = tables(seed=1, seeds=FIVE, net_sd=0.3, noise=0.0, effect=medical_plus_one)
    nets = network_means(images, "psnr")
    assert nets.variance.test_term == pytest.approx(0.0, abs=1e-12)
    from analysis.networks import contrasts

    a, b = "block3_conv2 · medical · λ=0.1", "block3_conv2 · imagenet · λ=0.1"
    got = contrasts(nets, [{a: 1.0, b: -1.0}]).iloc[0]
    fit = smf.ols("y ~ C(configuration) - 1", nets.table).fit()
    t = fit.t_test(f"C(configuration)[{a}] - C(configuration)[{b}] = 0")
    assert got["estimate"] == pytest.approx(float(t.effect[0]))
    assert got["se"] == pytest.approx(float(t.sd[0, 0])) and got["pvalue"] == pytest.approx(float(t.pvalue))


def test_variance_components_recover_the_simulated_ones():
    trials, images = tables(seed=2, seeds=tuple(range(8)), net_sd=0.4, noise=0.5, patients=3, n_images=60, patient_sd=0.5)
    fixed = network_means(images, "psnr").variance  # 3 < min_patients: patients fixed, images within them random
    assert fixed.population == "these_test_patients" and fixed.test_term < 0.01
    v = network_means(images, "psnr", min_patients=3).variance
    assert v.population == "patients" and v.df_units == 2
    assert v.n_patients == 3 and v.n_images == 60 and v.n_networks == 72
    assert v.sd_network == pytest.approx(np.sqrt(0.4**2 + 0.5**2 / 60), rel=0.3)
    assert v.test_term == pytest.approx(0.5**2 / 3, rel=0.6)
    assert 2 <= seeds_needed(v, 1.0) < seeds_needed(v, 0.5) or np.isinf(seeds_needed(v, 0.5))


def test_planted_interaction_gives_depends_claims(tmp_path):
    def crossed(level, pre, lam):
        return 0.0 if lam == 0 else (1.5 if (level == "block3_conv2") == (pre == "medical") else 0.0)

    claims = _claims(0, seeds=FIVE, net_sd=0.3, effect=crossed)
    dep = [c for c in claims if c["kind"] == "depends" and c.get("factor") == "feature_level"]
    assert dep and all(c["on"] == "pretraining" for c in dep)
    # within each pretraining the better feature level is the planted one
    for c in dep:
        want = "block3_conv2" if c["context"] == "pretraining=medical" else "block5_conv4"
        assert c["subject"] == f"feature_level={want}"
    imp = {c["subject"]: c for c in claims if c["kind"] == "factor_importance"}
    assert imp["feature level × pretraining"]["matters"] and imp["feature level × pretraining"]["share"] > 0.5


def test_report_writes_short_guidelines_and_json(tmp_path):
    out = results_folder(tmp_path, seeds=FIVE, net_sd=0.3, effect=medical_plus_one, patients=2, n_images=40,
                         lams=(0.001, 0.01, 0.1))
    (out / "study.yaml").write_text("name: synthetic\nmetric_window: abdomen\nanalysis:\n  min_effect: {psnr: 0.2}\n")
    report = update_report(out)
    md = (report / "guidelines.md").read_text()
    bullets = [line for line in md.splitlines() if line.startswith("- ")]
    assert 1 <= len(bullets) <= 15
    for b in bullets:
        assert "CI" in b and "family" in b and "networks" in b and "images" in b, b
    assert "holds for these test patients only (2 patient(s), fewer than 5)" in md
    assert {c["population"] for c in json.loads((report / "guidelines.json").read_text())} == {"these_test_patients"}
    claims = json.loads((report / "guidelines.json").read_text())
    keys = {"metric", "kind", "subject", "reference", "estimate", "ci_low", "ci_high", "p_adj", "test", "family",
            "n_networks", "n_images", "n_patients"}
    assert claims and all(keys <= set(c) for c in claims)
    assert {c["kind"] for c in claims} <= {"factor_importance", "best", "better", "worse", "equivalent", "undecided",
                                          "depends", "insufficient_replication"}
    assert all(c["min_effect"] == 0.2 for c in claims if c["metric"] == "psnr" and c["subject"] != "Ψ")
    better = [c for c in claims if c["kind"] == "better" and c["subject"] == "pretraining=medical"]
    assert better and all(c["n_patients"] == 2 and c["n_images"] == 40 for c in better)
    text = (report / "report.md").read_text()
    assert "**Who the claims are about:** Every claim holds for these test patients only" in "\n".join(text.splitlines()[:5])
    assert "## Design evidence: the trained network as the unit" in text and "psnr_per_patient.csv" not in text
    assert (report / "stats" / "network_variance.csv").is_file() and (report / "stats" / "psnr_per_patient.csv").is_file()
    assert "conditional on these trained networks and these test images" in text


def test_a_bad_analysis_setting_is_one_line(tmp_path):
    from study.errors import StudyError

    out = results_folder(tmp_path, seeds=(0, 1, 2))
    (out / "study.yaml").write_text("name: s\nanalysis:\n  min_effect: {psnr: -1}\n")
    with pytest.raises(StudyError, match=r"study.yaml: field 'analysis.min_effect'.*-1"):
        update_report(out)
    assert not (out / "report").exists()


def test_contrast_matches_a_crossed_mixed_model():
    """REML with crossed random intercepts for image and trained network (statsmodels variance components) gives
    the same estimate and standard error as the closed-form two-stage contrast."""
    import warnings

    from analysis.networks import contrasts

    trials, images = tables(seed=0, seeds=FIVE, net_sd=0.3, effect=medical_plus_one)
    d = images[["psnr", "configuration", "image_id", "run_key"]].assign(g=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("psnr ~ C(configuration)", d, groups="g",
                          vc_formula={"image": "0 + C(image_id)", "net": "0 + C(run_key)"}).fit(reml=True)
    a, b = "block3_conv2 · medical · λ=0.1", "block3_conv2 · imagenet · λ=0.1"
    pa, pb = f"C(configuration)[T.{a}]", f"C(configuration)[T.{b}]"
    cov = fit.cov_params()
    se = np.sqrt(cov.loc[pa, pa] + cov.loc[pb, pb] - 2 * cov.loc[pa, pb])
    got = contrasts(network_means(images, "psnr"), [{a: 1.0, b: -1.0}]).iloc[0]
    assert got["estimate"] == pytest.approx(fit.params[pa] - fit.params[pb], rel=1e-6)
    assert got["se"] == pytest.approx(se, rel=0.02)


def test_type2_sums_of_squares_match_statsmodels_and_survive_a_saturated_design():
    import warnings

    from statsmodels.stats.anova import anova_lm

    from analysis.factors import type2

    trials, images = tables(seed=4, seeds=FIVE, net_sd=0.3, failed=1, lams=(0.001, 0.01, 0.1), effect=medical_plus_one)
    nets = network_means(images, "psnr", ["feature_level", "pretraining", "lam"])
    t = nets.table[nets.table["configuration"] != "pixel-only"].astype({"lam": str})
    cm = t.groupby(["configuration", "feature_level", "pretraining", "lam"])["y"].agg(["mean", "size"]).reset_index()
    terms = [("feature_level",), ("pretraining",), ("lam",), ("feature_level", "pretraining"),
             ("feature_level", "lam"), ("pretraining", "lam")]
    got = type2(cm, terms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = anova_lm(smf.ols("y ~ (C(feature_level) + C(pretraining) + C(lam))**2", t).fit(), typ=2)
    np.testing.assert_allclose(got["ss"], ref["sum_sq"].iloc[:6], rtol=1e-8)
    assert list(got["df"]) == list(ref["df"].iloc[:6].astype(int))
    # two factors, every cell one configuration: the interaction uses up the configuration means (no residual)
    two = cm[cm["lam"] == "0.1"]
    sat = type2(two, [("feature_level",), ("pretraining",), ("feature_level", "pretraining")])
    assert sat["df"].tolist() == [1, 1, 1] and (sat["ss"] >= 0).all() and sat.attrs["df_model"] == 3


def test_one_seed_gives_no_test_rather_than_a_zero_p_value():
    claims = _claims(0, seeds=(0,), effect=medical_plus_one)
    assert claims and not {c["kind"] for c in claims} & FIRM
    tested = [c for c in claims if c["subject"] != "seeds per configuration"]
    assert tested and all(c["p_adj"] != c["p_adj"] for c in tested)  # NaN: no between-network error term
