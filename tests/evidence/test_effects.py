"""Image-blocked factor effects on planted data; report with a failed trial (guidelines: tests/test_guidelines.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.effects import factor_effects
from analysis.load import block_scores
from analysis.report import update_report

from helpers.synthetic import results_folder


def interaction(level, pre, lam):
    """block3 wins with the medical encoder, block5 with ImageNet (the paper's interaction), by 1.5 dB."""
    if lam == 0:
        return 0.0
    good = (level == "block3_conv2") == (pre == "medical")
    return 1.5 if good else 0.0


def test_effects_find_the_planted_interaction(tmp_path):
    out = results_folder(tmp_path, effect=interaction)
    per_image = pd.read_parquet(out / "per_image.parquet")
    eff = factor_effects(per_image, "psnr")
    inter = eff[(eff.kind == "interaction") & (eff.factor == "feature_level × pretraining")].iloc[0]
    assert inter.pvalue_adj < 0.001 and inter.median_diff == pytest.approx(-3.0, abs=0.5)  # (0 − 1.5) − (1.5 − 0)
    simple = eff[(eff.kind == "simple") & (eff.factor == "feature_level")].set_index("context")
    assert simple.loc["pretraining=medical", "median_diff"] > 1 and simple.loc["pretraining=imagenet", "median_diff"] < -1
    main = eff[(eff.kind == "main") & (eff.factor == "feature_level")].iloc[0]
    assert main.pvalue_adj > 0.05  # averaged over pretraining the two levels tie
    lam = eff[(eff.kind == "main") & (eff.factor == "lam")].iloc[0]
    assert lam.pvalue_adj > 0.05


def test_simple_effect_equals_a_direct_paired_wilcoxon(tmp_path):
    out = results_folder(tmp_path, effect=interaction, seeds=(0,))
    per_image = pd.read_parquet(out / "per_image.parquet")
    eff = factor_effects(per_image, "psnr")
    row = eff[(eff.kind == "simple") & (eff.factor == "feature_level") & (eff.context == "pretraining=medical")].iloc[0]
    x = per_image[per_image.pretraining == "medical"]
    wide = x.pivot_table(index=["block", "lam"], columns="feature_level", values="psnr")
    d = (wide["block3_conv2"] - wide["block5_conv4"]).groupby(level="block").mean()
    assert row.pvalue == pytest.approx(sps.wilcoxon(d).pvalue) and row.median_diff == pytest.approx(np.median(d))


def test_report_lists_a_failed_trial_as_missing(tmp_path):
    out = results_folder(tmp_path, effect=interaction, failed=1)
    report = update_report(out, power=True)
    text = (report / "report.md").read_text()
    assert "1 trial(s) not finished" in text and "Diverged: non-finite loss" in text
    trials = pd.read_parquet(out / "trials.parquet")
    failed_key = trials.loc[trials.status == "failed", "run_key"].iloc[0]
    assert failed_key in text
    # the configuration with the failed seed is still analysed from its remaining seed
    scores, dropped = block_scores(pd.read_parquet(out / "per_image.parquet"), "psnr")
    assert scores.shape[1] == 9 and dropped == 0
    for name in ("cd_psnr.png", "effects_psnr.png", "interaction_psnr.png", "box_psnr.png"):
        assert (report / "figures" / name).is_file(), name
    for name in ("psnr_pairwise.csv", "psnr_effects.csv", "psnr_nemenyi.csv", "psnr_conover.csv", "psnr_power.csv",
                 "psnr_mixed_model.csv", "psnr_per_seed.csv"):
        assert (report / "stats" / name).is_file(), name
    assert "Iman–Davenport" in text and "mixed model" in text and "## Methods" in text
    assert text.count("data:image/png;base64") == 0 and "data:image/png;base64" in (report / "report.html").read_text()
    assert not list(out.glob(".report-*"))  # the temporary build folder is gone


def test_block_key_merges_images_of_one_position(tmp_path):
    out = results_folder(tmp_path, effect=None)
    per_image = pd.read_parquet(out / "per_image.parquet")
    two = per_image.assign(block=per_image["image_id"].str.slice(0, 5))  # img00x → 'img00': 10 images per block
    scores, _ = block_scores(two, "psnr")
    assert len(scores) == per_image["image_id"].nunique() // 10
