"""The loss-function study end to end: the `loss` factor in the spec and grid, per-term logging in the trainer
(incl. the WGAN-GP critic across a resume), CT-specific metrics from the phantom geometry, the report's consistency
section, and the shipped experiment files."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import REPO, mlflow_runs, tiny_spec, write_spec
from study.cli import app
from study.spec import load_spec, parse_spec
from study.errors import StudyError
from study.planning.grid import expand

ALL_METRICS = ["psnr", "ssim", "rmse_hu", "ms_ssim", "vif", "gmsd", "noise_std", "cnr", "edge_width"]
WGAN = {"terms": {"mse": 1.0, "sobel": 0.5}, "perceptual": True, "adversarial": 1e-3,
        "critic": {"n_critic": 2, "width": 4}}


def loss_spec(tmp, **over):
    return tiny_spec(tmp, "loss", losses={"mse+wgan": WGAN},
                     factors={"loss": ["l1", "ssim", "perceptual", "mse+wgan"], "lam": [0], "psi_target": [0.9],
                              "feature_level": ["block1_conv2"], "pretraining": ["random"], "seed": [0]},
                     training={"epochs": 3, "val_metrics": ALL_METRICS}, metrics=ALL_METRICS, **over)


# -- spec and grid ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"factors": {"loss": ["nope"]}}, r"factors.loss.*'nope' is neither built in"),
    ({"losses": {"x": {"terms": {"mse": -1}}}, "factors": {"loss": ["x"]}}, r"losses.x.terms.*finite number ≥ 0"),
    ({"losses": {"x": {"terms": {"huber": 1}}}, "factors": {"loss": ["x"]}}, r"losses.x.terms.huber"),
    ({"losses": {"x": {"terms": {}}}, "factors": {"loss": ["x"]}}, r"needs a pixel term"),
    ({"factors": {"loss": ["perceptual"], "lam": [0]}}, r"'perceptual' has a perceptual term but factors.lam"),
    ({"losses": {"x": {"perceptual": True}}, "factors": {"loss": ["x"], "psi_target": [0.9]}}, r"no pixel term"),
    ({"metrics": ["psnr", "cnr"], "data": {"source": "mayo", "root": "."}}, r"\['cnr'\] need the phantom"),
])
def test_bad_loss_specs_name_the_field(tmp_path, change, message):
    with pytest.raises(StudyError, match=message):
        parse_spec(tiny_spec(tmp_path, **change), "s.yaml")


def test_loss_factor_grid_and_run_keys(tmp_path):
    base = parse_spec(tiny_spec(tmp_path, factors={"lam": [0, 0.1], "psi_target": [0.9]}))
    legacy = expand(base, "d", {"random": "e"})
    assert all("loss" not in t.factors() and "loss" not in t.config for t in legacy)  # paper-1 keys unchanged
    assert [t.configuration for t in legacy][0] == "pixel-only"
    # validation metrics only add logging: they never change a trial's key
    more_val = parse_spec(tiny_spec(tmp_path, factors={"lam": [0, 0.1], "psi_target": [0.9]},
                                    training={"val_metrics": ["psnr", "vif", "cnr"]}))
    assert [t.run_key for t in expand(more_val, "d", {"random": "e"})] == [t.run_key for t in legacy]

    spec = parse_spec(tiny_spec(tmp_path, losses={"mse+wgan": WGAN}, factors={
        "loss": ["l1", "perceptual", "mse+wgan"], "lam": [0, 0.1], "psi_target": [0.9], "seed": [0, 1]}))
    trials = expand(spec, "d", {"random": "e"})
    by = pd.DataFrame([{**t.factors(), "configuration": t.configuration, "key": t.run_key} for t in trials])
    # l1: one trial per seed, no encoder; each perceptual loss × (λ = 0.1, Ψ = 0.9); λ = 0 is not a perceptual arm
    assert sorted(by.groupby("loss").size().items()) == [("l1", 2), ("mse+wgan", 4), ("perceptual", 4)]
    assert set(by.loc[by["loss"] == "l1", "configuration"]) == {"l1"}
    assert set(by.loc[by["loss"] == "mse+wgan", "configuration"]) == {"mse+wgan · block1_conv2 · random · λ=0.1",
                                                                      "mse+wgan · block1_conv2 · random · Ψ=0.9"}
    assert by["key"].is_unique
    # a loss's definition is part of its trials' keys, and only of theirs
    heavier = parse_spec(tiny_spec(tmp_path, losses={"mse+wgan": {**WGAN, "adversarial": 1e-2}}, factors={
        "loss": ["l1", "perceptual", "mse+wgan"], "lam": [0, 0.1], "psi_target": [0.9], "seed": [0, 1]}))
    changed = {t.run_key for t in expand(heavier, "d", {"random": "e"})} ^ set(by["key"])
    assert changed and changed <= set(by.loc[by["loss"] == "mse+wgan", "key"]) | {
        t.run_key for t in expand(heavier, "d", {"random": "e"}) if t.loss == "mse+wgan"}
    assert len(changed) == 8  # 4 old wgan keys out, 4 new in


def test_shipped_loss_experiments_are_valid():
    full = load_spec(REPO / "experiments" / "loss_functions.yaml", check_paths=False)
    smoke = load_spec(REPO / "experiments" / "loss_functions_smoke.yaml")
    for spec in (full, smoke):
        assert {"l1", "mse", "charbonnier", "ssim", "mse+perceptual", "wgan-gp+perceptual"} <= set(spec.factors.loss)
        assert spec.loss("wgan-gp+perceptual").adversarial > 0 and spec.factors.psi_target == [0.95]
    assert smoke.data.source == "phantom" and {"cnr", "noise_std", "edge_width"} <= set(smoke.training.val_metrics)
    assert len(expand(smoke, "d", {"ct-rotnet": "e"})) == len(smoke.factors.loss) * len(smoke.factors.seed)


# -- phantom geometry and CT-specific metrics -----------------------------------------------------------------------

def test_phantom_geometry_and_ct_metrics():
    from scipy.ndimage import gaussian_filter

    from study.data.phantoms import phantom_slice
    from study.metrics.quality import ct_metrics, lesion_rois, uniform_roi

    img, labels, body = phantom_slice(3, 128, geometry=True)
    assert np.array_equal(img, phantom_slice(3, 128))  # the geometry does not change the image
    assert labels.shape == img.shape and len(lesion_rois(labels)) >= 1 and uniform_roi(labels).sum() > 100
    # lesions are 10–30 HU off the liver: their mean differs from their background ring
    les, bg = lesion_rois(labels)[0]
    assert 5 < abs(img[les].mean() - img[bg].mean()) < 35
    clean = ct_metrics(img, labels, body, 1.0)
    sigma = 30.0
    noisy = ct_metrics(img + np.random.default_rng(0).normal(0, sigma, img.shape), labels, body, 1.0)
    # known added noise: the liver ROI's std is √(texture² + σ²) within 10 %; CNR falls with it
    assert noisy["noise_std"] == pytest.approx(np.hypot(clean["noise_std"], sigma), rel=0.1)
    assert noisy["cnr"] < clean["cnr"] / 2
    # blur widens the body outline's edge; a sharp one is ~1.5 px (rasterised ellipse + interpolation)
    assert clean["edge_width"] < 2.0 < ct_metrics(gaussian_filter(img, 1.0), labels, body, 1.0)["edge_width"]


def test_prepared_phantoms_carry_labels_and_outlines(tmp_path):
    from study.data.cache import build_cache

    spec = parse_spec(tiny_spec(tmp_path)).data
    data = build_cache(spec, tmp_path / "cache")
    labels = np.load(data.path / "test_labels.npy")
    assert labels.shape == data.load("test")[1].shape and labels.dtype == np.uint8 and (labels >= 2).any()
    meta = data.meta("test")[0]
    assert set(meta["body"]) == {"cy", "cx", "ry", "rx"} and meta["pixel_mm"] == pytest.approx(350 / 64)
    assert not (data.path / "real_labels.npy").exists()  # the real slices have no phantom geometry


# -- trainer ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wgan_trial(tmp_path_factory):
    from study.planning.plan import plan, trial_spec
    from study.running.prepare import prepare

    tmp = tmp_path_factory.mktemp("wgan")
    spec = parse_spec(loss_spec(tmp))
    p = plan(spec)
    data, encoders = prepare(p, _quiet())
    trial = next(t for t in p.trials if t.loss == "mse+wgan")
    return trial_spec(p, trial, data, encoders)


def _quiet():
    from rich.console import Console

    return Console(quiet=True)


def test_every_term_is_logged_unweighted_weighted_and_as_a_share(wgan_trial):
    from study.trial.train import run_trial

    res = run_trial(wgan_trial)
    assert len(res.history) == 3
    for h in res.history:
        names = ["mse", "sobel", "perceptual", "adversarial"]
        assert sum(h[f"share_{n}"] for n in names) == pytest.approx(1.0)
        assert h["wloss_sobel"] == pytest.approx(0.5 * h["loss_sobel"])
        assert h["wloss_perceptual"] == pytest.approx(h["lam"] * h["loss_perceptual"], rel=0.3)  # λ held per step
        assert h["wloss_adversarial"] == pytest.approx(1e-3 * h["loss_adversarial"])
        assert 0 < h["psi"] < 1 and all(np.isfinite(h[f"val_{m}"]) for m in ALL_METRICS)
    assert [h["critic_steps"] for h in res.history] == [6, 12, 18]  # n_critic 2 × 3 steps per epoch
    row = res.per_image[0]
    assert {f"input_{m}" for m in ALL_METRICS} | set(ALL_METRICS) <= set(row)
    assert res.summary["loss_terms"] == "mse,sobel,perceptual,adversarial"


def test_adversarial_trial_resumes_exactly_from_its_checkpoint(wgan_trial, tmp_path):
    """The critic and its optimiser are checkpointed: 2 epochs, then a restart to 3, equals 3 in one go (CPU)."""
    from study.trial.train import run_trial

    whole = run_trial(replace(wgan_trial, out_dir=str(tmp_path / "a")))
    short = replace(wgan_trial, out_dir=str(tmp_path / "b"), training=wgan_trial.training.model_copy(update={"epochs": 2}))
    run_trial(short)
    resumed = run_trial(replace(short, training=wgan_trial.training))
    assert resumed.summary["resumed_from"] == 2
    assert resumed.history[-1]["critic_steps"] == whole.history[-1]["critic_steps"] == 18
    for key in ("train_loss", "loss_adversarial", "critic_loss", "val_psnr"):
        assert resumed.history[-1][key] == pytest.approx(whole.history[-1][key], rel=1e-6)


# -- the whole study through the CLI ---------------------------------------------------------------------------------

def test_loss_study_runs_and_reports_consistency(tmp_path):
    spec = loss_spec(tmp_path, tracking={"enabled": True, "example_images": 0})
    spec["factors"]["seed"] = [0, 1]
    res = CliRunner().invoke(app, ["run", str(write_spec(tmp_path, spec))])
    assert res.exit_code == 0, res.output
    out = tmp_path / "loss"
    trials, images = pd.read_parquet(out / "trials.parquet"), pd.read_parquet(out / "per_image.parquet")
    assert (trials["status"] == "finished").all() and len(trials) == 8
    assert set(trials["loss"]) == {"l1", "ssim", "perceptual", "mse+wgan"}
    assert images.loc[images["test_set"] == "test", ["cnr", "noise_std", "edge_width"]].notna().all().all()
    report = (out / "report" / "report.md").read_text()
    assert "## Do the losses and the metrics agree?" in report and "Kendall's W over the 9 metrics" in report
    for fig in ("consistency_trajectories.png", "consistency_tau.png"):
        assert (out / "report" / "figures" / fig).stat().st_size > 1000
    summary = json.loads((out / "report" / "summary.json").read_text())["consistency"]
    assert 0 <= summary["kendall_w"] <= 1 and len(summary["tau"]) == 36
    dis = pd.read_csv(out / "report" / "stats" / "consistency_disagreements.csv")
    assert set(dis["metric"]) >= {"ssim"} and dis.loc[dis["metric"] == "ssim", "optimised_by"].item() == "ssim"
    shares = pd.read_csv(out / "report" / "stats" / "loss_term_shares.csv").set_index("configuration")
    assert shares.loc["l1", "l1"] == 1.0 and shares.loc["mse+wgan · block1_conv2 · random · Ψ=0.9", "adversarial"] > 0
    # MLflow: every child run has one point per epoch of each term's share
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{out / 'mlflow.db'}"
    runs = mlflow_runs(uri, "loss")
    child = runs[runs["tags.run_key"] == trials.loc[trials["loss"] == "mse+wgan", "run_key"].iloc[0]]
    history = MlflowClient(tracking_uri=uri).get_metric_history(child["run_id"].item(), "share_adversarial")
    assert [m.step for m in history] == [0, 1, 2]


def test_spec_names_match_the_implementations():
    """config stays torch-free by naming metrics and pixel terms itself: the names must be the implemented ones."""
    from study.spec import MetricName, PixelTerm
    from study.losses.terms import PIXEL_TERMS
    from study.metrics.registry import QUALITY_METRICS

    assert set(MetricName.__args__) == set(QUALITY_METRICS)
    assert set(PixelTerm.__args__) == set(PIXEL_TERMS)
