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
