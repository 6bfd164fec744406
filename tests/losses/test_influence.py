"""Perceptual influence as the study's axis: Ψ targets, calibration, hold-psi, Ψ_g, `study calibrate`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from study.cli import app
from study.spec import load_spec
from study.errors import StudyError
from study.losses.influence import HoldPsi
from study.losses import lam_for_influence, perceptual_influence
from study.running.run import run_study

from helpers import tiny_spec, write_spec

MAGNITUDES = [10.0**e for e in range(-8, 4)]


@pytest.mark.parametrize("pix", MAGNITUDES)
@pytest.mark.parametrize("perc", MAGNITUDES[::3])
def test_round_trip_over_eleven_decades(pix, perc):
    for psi in (0.05, 0.5, 0.95, 0.999):
        assert perceptual_influence(pix, perc, lam_for_influence(psi, pix, perc)) == pytest.approx(psi, rel=1e-9)


@pytest.mark.parametrize("bad", [0, 1, -0.2, 1.5])
def test_invalid_psi_targets_are_one_line(tmp_path, bad):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"psi_target": [0.5, bad]}))
    with pytest.raises(StudyError) as err:
        load_spec(path)
    msg = str(err.value)
    assert "\n" not in msg and "factors.psi_target" in msg and "(0, 1)" in msg


def test_hold_psi_bounds_each_change():
    h = HoldPsi(0.5, lam=1.0, every=1, max_change=2.0)
    assert h.step(1.0, 1000.0) == 0.5  # wants 0.001: halved only
    assert h.step(1.0, 1.0) == 1.0  # wants 1.0: back up (×2 bound not hit)


@pytest.fixture(scope="module")
def psi_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("psi")
    raw = tiny_spec(tmp, name="psi", factors={"feature_level": ["block2_conv2"], "lam": [0, 0.1], "psi_target": [0.5],
                                               "seed": [0]},
                    training={"epochs": 4, "steps_per_epoch": 6, "lam_schedule": "hold-psi", "hold_every": 2})
    path = write_spec(tmp, raw)
    run_study(load_spec(path))
    return tmp / "psi"


def test_psi_target_trial_is_calibrated_and_held(psi_study):
    trials = pd.read_parquet(psi_study / "trials.parquet")
    row = trials[trials["psi_target"] == 0.5].iloc[0]
    assert row["configuration"].endswith("Ψ=0.5") and pd.isna(row["lam"])
    assert row["lam_calibrated"] > 0 and abs(row["psi"] - 0.5) <= 0.05
    history = json.loads((psi_study / "trials" / row["run_key"] / "history.json").read_text())
    assert len(history) == 4
    for epoch in history[2:]:  # the last half of training
        assert abs(epoch["psi"] - 0.5) <= 0.05
        assert 0 < epoch["psi_grad"] < 1 and epoch["lam"] > 0
    fixed = trials[trials["lam"] == 0.1].iloc[0]
    assert fixed["psi"] > 0.9  # λ = 0.1 drowns the pixel term at this layer — the point of calibrating


def test_report_has_psi_curves_and_lambda_table(psi_study):
    text = (psi_study / "report" / "report.md").read_text()
    assert "Ψ-curves" in text and (psi_study / "report" / "figures" / "psi_curves.png").is_file()
    table = pd.read_csv(psi_study / "report" / "stats" / "lambda_for_psi.csv")
    for col in ("lam_for_psi_0.5", "lam_for_psi_0.9", "lam_for_psi_0.95", "lam_for_psi_0.99", "psi_at_lam_0.1"):
        assert col in table
    r = table.iloc[0]
    assert perceptual_influence(r["L_pixel"], r["L_P"], r["lam_for_psi_0.95"]) == pytest.approx(0.95)
    # fixed λ = 0.1 against the Ψ = 0.5 arm is one factor, "weighting", in the effects table
    effects = pd.read_csv(psi_study / "report" / "stats" / "psnr_effects.csv")
    main = effects[effects["kind"] == "main"]
    assert list(main["factor"]) == ["weighting"] and {main["a"].iloc[0], main["b"].iloc[0]} == {"λ=0.1", "Ψ=0.5"}


def test_calibrate_command_prints_and_writes_the_table(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, factors={"feature_level": ["block1_conv2", "block2_conv2"],
                                                             "psi_target": [0.9], "lam": [0]}))
    res = CliRunner().invoke(app, ["calibrate", str(path)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "tiny" / "calibration.csv")
    assert len(table) == 2 and set(table["psi_target"]) == {0.9}
    for r in table.itertuples():
        assert perceptual_influence(r.pixel_loss, r.perceptual_loss, r.lam) == pytest.approx(0.9)
    assert np.all(table["lam"] > 0)


@pytest.mark.slow
def test_optuna_refinement_spends_its_budget_once_and_resumes(tmp_path, ray_session):
    import optuna

    raw = tiny_spec(tmp_path, name="refine", backend="ray",
                    factors={"feature_level": ["block1_conv2"], "lam": [0, 0.1], "seed": [0]},
                    search={"over": "psi_target", "low": 0.3, "high": 0.9, "budget": 2})
    path = write_spec(tmp_path, raw)
    run_study(load_spec(path))
    out = tmp_path / "refine"
    table = pd.read_parquet(out / "search.parquet")
    assert len(table) == 2 and table["psi_target"].between(0.3, 0.9).all() and table["val_psnr"].notna().all()
    keys = set(table["run_key"])
    assert all((out / "trials" / k / "result.json").is_file() for k in keys)
    assert len(pd.read_parquet(out / "trials.parquet")) == 2  # refinement trials are not grid trials
    assert "Refinement search (Optuna)" in (out / "report" / "report.md").read_text()
    # a rerun finds the budget spent: no new Optuna trial, no new trial folder
    folders = {p.name for p in (out / "trials").iterdir()}
    run_study(load_spec(path))
    study = optuna.load_study(study_name="refine:block1_conv2:random:psi_target", storage=f"sqlite:///{out / 'search.db'}")
    assert len(study.trials) == 2 and {p.name for p in (out / "trials").iterdir()} == folders
    # a larger budget spends only the difference
    raw["search"]["budget"] = 3
    run_study(load_spec(write_spec(tmp_path, raw)))
    assert len(pd.read_parquet(out / "search.parquet")) == 3


def test_search_needs_the_ray_backend(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path, search={"budget": 1}))
    with pytest.raises(StudyError, match="search"):
        run_study(load_spec(path))
    with pytest.raises(StudyError, match=r"field 'search': low \(0.9\) must be below high"):
        load_spec(write_spec(tmp_path, tiny_spec(tmp_path, search={"low": 0.9, "high": 0.5}), "b.yaml"))


def test_hold_psi_add_equals_that_many_steps():
    from study.losses.influence import HoldPsi

    a, b = HoldPsi(0.9, 0.1, every=4), HoldPsi(0.9, 0.1, every=4)
    terms = [(1e-3 * (i + 1), 2.0 + i) for i in range(10)]
    for pix, perc in terms:
        a.step(pix, perc)
    for chunk in (terms[:3], terms[3:4], terms[4:8], terms[8:]):  # windows that end at most at an update
        b.add(sum(p for p, _ in chunk), sum(q for _, q in chunk), len(chunk))
    assert a.state() == pytest.approx(b.state())


def test_packing_warning():
    from study.trial.packing import packing_warning, trials_per_gpu

    gib = 2**30
    assert trials_per_gpu(0.25) == 4 and trials_per_gpu(0.3) == 3 and trials_per_gpu(0) == 1
    assert packing_warning(10 * gib, 80 * gib, 0.25) is None  # 4 × 10 GiB in 72 GiB
    msg = packing_warning(30 * gib, 80 * gib, 0.25)
    assert "4 trials per GPU" in msg and "resources.gpu ≥ 0.5 (2 per GPU)" in msg
