"""λ for a target Ψ from converged magnitudes (paper 1's calibration), against the in-training ways (issue #17, 7)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from analysis.psi_calibration import converged_lams, lam_three_ways
from study.cli import app
from study.losses import perceptual_influence


def _trials() -> pd.DataFrame:
    rows = []
    for seed, (pix, perc) in enumerate([(1.0e-4, 0.50), (1.5e-4, 0.52), (1.2e-4, 0.40)]):  # block5: medians 1.2e-4, 0.5
        rows.append(dict(run_key=f"f{seed}", status="finished", feature_level="block5_conv4", pretraining="imagenet",
                         lam=0.1, psi_target=None, seed=seed, pixel_loss=pix, perceptual_loss=perc))
    rows.append(dict(run_key="base", status="finished", feature_level=None, pretraining=None, lam=0.0,
                     psi_target=None, seed=0, pixel_loss=1e-4, perceptual_loss=0.0))
    rows.append(dict(run_key="failed", status="failed", feature_level="block5_conv4", pretraining="imagenet", lam=0.1,
                     psi_target=None, seed=3, pixel_loss=9.0, perceptual_loss=9.0))
    for seed, lam in enumerate([0.002, 0.004]):
        rows.append(dict(run_key=f"p{seed}", status="finished", feature_level="block5_conv4", pretraining="imagenet",
                         lam=None, psi_target=0.95, seed=seed, pixel_loss=1e-4, perceptual_loss=0.3,
                         lam_calibrated=lam, lam_final=2 * lam))
    return pd.DataFrame(rows)


def test_converged_lambda_is_paper_1s_formula_on_median_last_epoch_magnitudes():
    table = converged_lams(_trials(), [0.95, 0.5])
    assert len(table) == 2 and set(table["n_trials"]) == {3} and set(table["from_lam"]) == {"0.1"}
    row = table[table["psi_target"] == 0.95].iloc[0]
    assert row["lam_converged"] == pytest.approx(0.95 / 0.05 * 1.2e-4 / 0.5, rel=1e-12)
    # the λ found gives back the target Ψ on those magnitudes
    assert perceptual_influence(row["pixel_loss"], row["perceptual_loss"], row["lam_converged"]) == pytest.approx(0.95)
    three = lam_three_ways(_trials()).iloc[0]
    assert three["lam_start"] == pytest.approx(0.003) and three["lam_end"] == pytest.approx(0.006)
    assert three["ratio"] == pytest.approx(row["lam_converged"] / 0.003)


def test_calibrate_command_reads_a_finished_results_folder(tmp_path):
    _trials().to_parquet(tmp_path / "trials.parquet")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({"name": "x", "factors": {"psi_target": [0.95]}}))
    res = CliRunner().invoke(app, ["calibrate", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    written = pd.read_csv(tmp_path / "calibration_converged.csv")
    assert list(written["psi_target"]) == [0.95] and math.isclose(written["lam_converged"][0], 0.00456, rel_tol=1e-9)
    assert "0.00456" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(app, ["calibrate", str(empty)])
    assert res.exit_code == 2 and "trials.parquet" in res.output


@pytest.mark.slow
def test_psi_trials_calibrated_from_a_pilots_converged_magnitudes(tmp_path):
    from helpers import tiny_spec, write_spec

    from study.planning.plan import plan
    from study.errors import StudyError
    from study.spec import load_spec

    pilot = write_spec(tmp_path, tiny_spec(tmp_path, name="pilot", factors={"lam": [0.1]}), "pilot.yaml")
    assert CliRunner().invoke(app, ["run", str(pilot)]).exit_code == 0
    magnitudes = pd.read_parquet(tmp_path / "pilot" / "trials.parquet").iloc[0]
    expected = 0.9 / 0.1 * magnitudes["pixel_loss"] / magnitudes["perceptual_loss"]

    raw = tiny_spec(tmp_path, name="psi", factors={"lam": [0], "psi_target": [0.9]},
                    training={"psi_calibration": "converged", "psi_pilot": "pilot"})
    path = write_spec(tmp_path, raw, "psi.yaml")
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 0, res.output
    trials = pd.read_parquet(tmp_path / "psi" / "trials.parquet").set_index("configuration")
    assert trials.loc["block1_conv2 · random · Ψ=0.9", "lam_calibrated"] == pytest.approx(expected, rel=1e-12)
    # the λ is part of the run key; calibrating at the start of training is another trial
    start = plan(load_spec(write_spec(tmp_path, {**raw, "training": {**raw["training"], "psi_calibration": "start",
                                                                     "psi_pilot": None}}, "start.yaml")))
    assert trials.loc["block1_conv2 · random · Ψ=0.9", "run_key"] not in {t.run_key for t in start.trials}
    # a pilot without the pair's fixed-λ trials is a one-line error naming it
    other = {**raw, "factors": {**raw["factors"], "feature_level": ["block2_conv1"]}}
    with pytest.raises(StudyError, match="block2_conv1 · random"):
        plan(load_spec(write_spec(tmp_path, other, "other.yaml")))


@pytest.mark.slow
def test_psi_pilot_self_runs_the_fixed_lambda_trials_first_and_calibrates_from_them(tmp_path):
    from helpers import tiny_spec, write_spec

    raw = tiny_spec(tmp_path, name="selfpilot", factors={"lam": [0, 0.1], "psi_target": [0.9]},
                    training={"psi_calibration": "converged", "psi_pilot": "self"})
    res = CliRunner().invoke(app, ["run", str(write_spec(tmp_path, raw))])
    assert res.exit_code == 0, res.output
    trials = pd.read_parquet(tmp_path / "selfpilot" / "trials.parquet").set_index("configuration")
    pilot = trials.loc["block1_conv2 · random · λ=0.1"]
    expected = 0.9 / 0.1 * pilot["pixel_loss"] / pilot["perceptual_loss"]
    assert trials.loc["block1_conv2 · random · Ψ=0.9", "lam_calibrated"] == pytest.approx(expected, rel=1e-12)
    report = (tmp_path / "selfpilot" / "report" / "report.md").read_text()
    assert "## λ for a target Ψ, three ways" in report
