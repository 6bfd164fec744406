"""analysis.influence: magnitudes per training arm, the λ table, the section text and figure."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.influence import influence_evidence, influence_lines, lam_table, magnitudes
from study.losses.psi import lam_for_influence


def _trials() -> pd.DataFrame:
    rows = []
    for pre, scale in (("imagenet", 1.0), ("random", 10.0)):
        for lam, pix, perc in ((0.01, 0.002, 5.0), (0.1, 0.004, 1.0)):  # the λ=0.1 nets learnt a smaller L_P
            for seed, jitter in ((0, 0.9), (1, 1.1)):
                rows.append({"run_key": f"{pre}-{lam}-{seed}", "status": "finished", "configuration": f"{pre} λ={lam}",
                             "seed": seed, "feature_level": "block3_conv4", "pretraining": pre, "lam": lam,
                             "psi_target": None, "pixel_loss": pix * jitter, "perceptual_loss": perc * scale * jitter,
                             "psi": 0.5, "psnr": 30.0 + lam})
    rows += [{"run_key": "hold", "status": "finished", "configuration": "imagenet Ψ=0.9", "seed": 0,
              "feature_level": "block3_conv4", "pretraining": "imagenet", "lam": 0.1, "psi_target": 0.9,
              "pixel_loss": 0.003, "perceptual_loss": 0.2, "psi": 0.9, "psnr": 31.0, "lam_calibrated": 0.05,
              "lam_final": 0.12},
             {"run_key": "pix", "status": "finished", "configuration": "pixel-only", "seed": 0, "feature_level": None,
              "pretraining": None, "lam": 0.0, "psi_target": None, "pixel_loss": 0.003, "perceptual_loss": 0.0,
              "psi": 0.0, "psnr": 29.0},
             {"run_key": "bad", "status": "failed", "configuration": "imagenet λ=0.1", "seed": 2,
              "feature_level": "block3_conv4", "pretraining": "imagenet", "lam": 0.1, "psi_target": None,
              "pixel_loss": 99.0, "perceptual_loss": 99.0, "psi": None, "psnr": None}]
    return pd.DataFrame(rows)


def test_magnitudes_not_averaged_across_arms():
    m = magnitudes(_trials().query("run_key != 'hold'"))
    assert m.groupby(["feature_level", "pretraining"]).size().tolist() == [2, 2]
    m = m.set_index(["pretraining", "arm"])
    assert m.loc[("imagenet", "λ=0.01"), "perceptual_loss"] == pytest.approx(5.0)
    assert m.loc[("imagenet", "λ=0.1"), "perceptual_loss"] == pytest.approx(1.0)  # not the cross-arm mean 3.0
    assert m.loc[("random", "λ=0.1"), "pixel_loss"] == pytest.approx(0.004)
    assert m.loc[("imagenet", "λ=0.1"), "n"] == 2  # the failed trial is left out


def test_psi_target_trials_form_their_own_arm():
    m = magnitudes(_trials()).set_index(["pretraining", "arm"])
    assert m.loc[("imagenet", "Ψ=0.9"), "perceptual_loss"] == pytest.approx(0.2)
    assert m.loc[("imagenet", "λ=0.1"), "perceptual_loss"] == pytest.approx(1.0)
    assert len(m) == 5


def test_lam_table_per_row():
    t = lam_table(magnitudes(_trials()))
    assert "arm" in t and len(t) == 5
    for r in t.itertuples():
        for p in (0.5, 0.9, 0.95, 0.99):
            assert t.loc[r.Index, f"lam_for_psi_{p:g}"] == pytest.approx(lam_for_influence(p, r.L_pixel, r.L_P))
    by_arm = t.set_index(["pretraining", "arm"])["lam_for_psi_0.95"]
    assert by_arm[("imagenet", "λ=0.01")] != pytest.approx(by_arm[("imagenet", "λ=0.1")])


def test_section_text_and_figure(tmp_path):
    (tmp_path / "stats").mkdir()
    (tmp_path / "figures").mkdir()
    lines = influence_lines(influence_evidence(_trials()), _trials(), tmp_path)
    text = "\n".join(lines)
    assert "λ-weighted per-step sums" in text and "hold-Ψ" in text
    assert "unweighted last-epoch means" in text and "training arm" in text
    assert (tmp_path / "figures" / "psi_curves.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "psnr_vs_psi.png").is_file()
    csv = pd.read_csv(tmp_path / "stats" / "lambda_for_psi.csv")
    assert sorted(csv["arm"].unique()) == ["Ψ=0.9", "λ=0.01", "λ=0.1"]
    assert "| pretraining | arm |" in text  # the λ table carries the arm column
