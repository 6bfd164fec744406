"""Consistency of losses and metrics on planted cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.consistency import disagreements, ranking_concordance, trajectory_agreement


def test_trajectory_agreement_signs():
    epochs = np.arange(8)
    loss = 1 / (1 + epochs)  # falls
    history = pd.DataFrame({"run_key": "k", "epoch": epochs, "mse": loss,
                            "psnr": 20 + epochs,        # improves as the loss falls: agrees
                            "rmse_hu": 50 - epochs,     # lower is better, falls: agrees
                            "vif": 0.9 - 0.05 * epochs})  # higher is better but falls: disagrees
    t = trajectory_agreement(history, ["mse"], {"psnr": True, "rmse_hu": False, "vif": True}).set_index("metric")
    assert t.loc["psnr", "agreement"] == pytest.approx(1.0) and t.loc["rmse_hu", "agreement"] == pytest.approx(1.0)
    assert t.loc["vif", "agreement"] == pytest.approx(-1.0) and (t["n_epochs"] == 8).all()


def test_concordance_of_planted_rankings():
    configs = [f"c{i}" for i in range(6)]
    good = pd.Series(np.arange(6.0), index=configs)
    same = pd.DataFrame({"psnr": good, "ssim": good / 10, "rmse_hu": -good})  # all agree (rmse: lower is better)
    res = ranking_concordance(same, {"psnr": True, "ssim": True, "rmse_hu": False})
    assert res["kendall_w"] == pytest.approx(1.0) and np.allclose(res["tau"]["tau"], 1.0)
    opposed = pd.DataFrame({"psnr": good, "ssim": -good})
    res = ranking_concordance(opposed, {"psnr": True, "ssim": True})
    assert res["tau"]["tau"].iloc[0] == pytest.approx(-1.0) and res["kendall_w"] == pytest.approx(0.0)


def test_disagreement_table():
    means = pd.DataFrame({"psnr": [30.0, 29.0, 28.0], "ssim": [0.80, 0.90, 0.85]}, index=["mse", "ssim", "l1"])
    optimised = {"mse": "mse", "ssim": "ssim", "l1": "l1"}
    table = disagreements(means, {"psnr": True, "ssim": True}, optimised).set_index("metric")
    assert table.loc["psnr", "agree"] and table.loc["ssim", "agree"]
    means.loc["l1", "ssim"] = 0.95  # SSIM now prefers the L1-trained model over the SSIM-trained one
    table = disagreements(means, {"psnr": True, "ssim": True}, optimised).set_index("metric")
    assert not table.loc["ssim", "agree"] and table.loc["ssim", "prefers"] == "l1"
    assert table.loc["ssim", "optimised_by"] == "ssim" and table.loc["ssim", "rank_of_optimised"] == 2.0
    # the ssim loss (torchmetrics, Gaussian window, training range) is not the ssim metric: the table says so
    assert table.loc["ssim", "definitions"].startswith("differs") and "7×7" in table.loc["ssim", "definitions"]
