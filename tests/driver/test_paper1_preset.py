"""Paper 1's reproduction preset (issue #17): the shipped experiments/paper1.yaml plans the paper's trials, and a small
study with the paper's settings on phantoms ends in a report with the paper's own analysis and published numbers."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import REPO, tiny_spec, write_spec
from study.cli import app


def test_the_preset_plans_the_papers_trials():
    from study.planning.plan import plan
    from study.spec import load_spec

    spec = load_spec(REPO / "experiments" / "paper1.yaml", check_paths=False)
    assert spec.training.patches == "tiled" and spec.training.select == "last" and spec.window.bits == 8
    assert (spec.training.psi_calibration, spec.training.psi_pilot) == ("converged", "self")
    assert all(spec.encoder(name).input == "x255" for name in spec.factors.pretraining)
    p = plan(spec, allow_missing_weights=True)
    arms = {(t.feature_level, t.pretraining, t.lam, t.psi_target) for t in p.trials}
    assert len(p.trials) == 27 and len(arms) == 9  # pixel-only + 2 levels × 2 encoders × (λ = 0.1, Ψ = 0.95)
    assert {a[0] for a in arms} == {"none", "block3_conv2", "block5_conv4"} and {a[3] for a in arms} == {None, 0.95}
    psi = [t for t in p.trials if t.psi_target is not None]
    assert all(len(t.pilot_keys) == 3 for t in psi)  # each Ψ trial calibrates from the 3 λ = 0.1 trials of its pair


@pytest.mark.slow
def test_a_study_with_the_papers_settings_reports_the_papers_analysis_and_numbers(tmp_path):
    raw = tiny_spec(tmp_path, name="paper1-mini",
                    factors={"feature_level": ["block3_conv2", "block5_conv4"], "pretraining": ["random"],
                             "lam": [0, 0.1], "psi_target": [0.95], "seed": [0, 1]},
                    training={"patches": "tiled", "select": "last", "psi_calibration": "converged",
                              "psi_pilot": "self"},
                    metric_window="full", metrics=["ssim", "psnr", "nrmse"],
                    analysis={"paper1": True, "paper1_encoders": {"imagenet": "random"}})
    res = CliRunner().invoke(app, ["run", str(write_spec(tmp_path, raw))])
    assert res.exit_code == 0, res.output
    out = tmp_path / "paper1-mini"
    trials = pd.read_parquet(out / "trials.parquet")
    assert len(trials) == 10 and set(trials["status"]) == {"finished"}
    assert pd.read_parquet(out / "per_image.parquet")["nrmse"].gt(0).all()
    report = (out / "report" / "report.md").read_text()
    for heading in ("As paper 1 analysed it", "Paper 1's published loss magnitudes", "λ for a target Ψ, three ways"):
        assert heading in report, heading
    published = pd.read_csv(out / "report" / "stats" / "paper1_published.csv")
    assert {"block3_conv2", "block5_conv4"} <= set(published["feature_level"])
    assert (out / "report" / "stats" / "paper1_pairs.csv").is_file()
    assert "full range −1024…3072 HU, 8-bit" in report
