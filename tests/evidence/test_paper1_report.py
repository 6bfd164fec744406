"""analysis.paper1 and its report sections: paper 1's all-pairs statistics beside the network-level verdicts, and its
published loss magnitudes beside the measured ones (`analysis: {paper1: true}`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.claims import Settings
from analysis.factors import design_networks
from analysis.paper1 import (PUBLISHED, compare, first_seed_scores, measured_vs_published, network_pairs,
                             paper_pairs)
from analysis.report import update_report
from helpers.synthetic import MAGNITUDE, results_folder, tables
from study.losses.psi import perceptual_influence

PAPER1 = {"analysis": {"paper1": True, "paper1_encoders": {"imagenet": "imagenet", "medical": "medical"}}}


def test_all_pairs_wilcoxon_and_cohens_d_by_hand():
    _, images = tables(seeds=(0, 1), n_images=20, net_sd=0.2, seed=3)
    scores, seeds = first_seed_scores(images, "ssim")
    assert set(seeds.values()) == {0} and scores.shape == (20, 9)
    x = images[images["seed"] == 0]
    pw = paper_pairs(scores)
    assert len(pw) == 9 * 8 // 2
    for r in pw.itertuples():
        a = x[x["configuration"] == r.a].set_index("image_id")["ssim"].sort_index().to_numpy()
        b = x[x["configuration"] == r.b].set_index("image_id")["ssim"].sort_index().to_numpy()
        res = sps.wilcoxon(a, b)  # paper 1's call: scipy's defaults, two-sided
        assert r.pvalue == pytest.approx(res.pvalue, rel=1e-9) and r.statistic == pytest.approx(res.statistic)
        pooled = np.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
        assert r.abs_d == pytest.approx(abs(a.mean() - b.mean()) / pooled, rel=1e-9)
        expected = (r.a if a.mean() > b.mean() else r.b) if res.pvalue < 0.05 else None
        assert (r.winner if isinstance(r.winner, str) else None) == expected


def test_seed_luck_pair_is_listed_first_as_changed():
    """Large seed-to-seed variance, small effect: the seed-0 networks differ 'significantly' on every image, the
    network-level analysis over 3 seeds does not establish it."""
    _, images = tables(seeds=(0, 1, 2), n_images=30, net_sd=1.0, noise=0.2, seed=1,
                       effect=lambda lv, pre, lam: 0.1 if (lv, pre, lam) == ("block3_conv2", "imagenet", 0.1) else 0.0)
    s = Settings()
    pw = paper_pairs(first_seed_scores(images, "ssim")[0])
    t = compare(pw, network_pairs(design_networks(images, "ssim")[0], "ssim", pw, s), s, "ssim")
    assert t["changed"].any() and not t["changed"].all()
    first_unchanged = int(np.argmin(t["changed"].to_numpy()))
    assert t["changed"].iloc[:first_unchanged].all() and not t["changed"].iloc[first_unchanged:].any()
    top = t.iloc[0]
    assert isinstance(top["winner"], str) and pd.isna(top["net_winner"])
    assert top["paper_style"].startswith(f"{top['winner']} better (p ")
    assert top["network_level"].startswith(("not established", "equivalent"))


def test_planted_real_effect_is_not_changed():
    big = lambda lv, pre, lam: 5.0 if (lv, pre, lam) == ("block5_conv4", "medical", 0.01) else 0.0  # noqa: E731
    _, images = tables(seeds=(0, 1, 2), n_images=30, net_sd=0.05, effect=big)
    s = Settings()
    pw = paper_pairs(first_seed_scores(images, "ssim")[0])
    t = compare(pw, network_pairs(design_networks(images, "ssim")[0], "ssim", pw, s), s, "ssim").set_index(["a", "b"])
    winner = "block5_conv4 · medical · λ=0.01"
    row = t.loc[[i for i in t.index if winner in i and "pixel-only" in i][0]]
    assert row["winner"] == winner and row["net_winner"] == winner and not row["changed"]
    assert row["network_level"].startswith(f"{winner} better (Δ = ")


def test_one_seed_is_not_testable_at_network_level():
    _, images = tables(seeds=(0,), n_images=15)
    s = Settings()
    pw = paper_pairs(first_seed_scores(images, "ssim")[0])
    t = compare(pw, network_pairs(design_networks(images, "ssim")[0], "ssim", pw, s), s, "ssim")
    assert t["network_level"].str.startswith("not testable").all()
    assert t["changed"].tolist() == list(t["winner"].notna())


def test_published_rows_beside_measured():
    trials, _ = tables(seeds=(0, 1))
    t = measured_vs_published(trials, {"imagenet": "imagenet", "medical": "medical"})
    assert len(t) == 4 and t["verdict"].ne("not measured").all()
    for p, r in zip(PUBLISHED, t.itertuples()):
        assert (r.feature_level, r._1) == (p["feature_level"], p["encoder"])  # "encoder (paper 1)"
        assert r.arm == "λ=0.1" and r.n == 2
        assert r.mse_measured == pytest.approx(1e-4) and r.l_p_measured == pytest.approx(MAGNITUDE[p["feature_level"],
                                                                                               p["encoder"]] * 1e-2)
        assert r.mse_ratio == pytest.approx(1e-4 / p["mse"]) and r.l_p_ratio == pytest.approx(r.l_p_measured / p["l_p"])
        assert r.psi_published == pytest.approx(perceptual_influence(p["mse"], p["l_p"], 0.1))
        assert r.psi_measured == pytest.approx(perceptual_influence(1e-4, r.l_p_measured, 0.1))
        fold = max(max(x, 1 / x) for x in (r.mse_ratio, r.l_p_ratio))
        assert r.verdict == ("within 2×" if fold <= 2 else f"off by {fold:.3g}×")
    assert t.iloc[1]["psi_published"] == pytest.approx(0.998, abs=1e-3)  # ImageNet block5_conv4 (facts)
    default = measured_vs_published(trials, {"imagenet": "imagenet"})
    assert default["verdict"].tolist()[2:] == ["not measured"] * 2  # no medical encoder named


def test_report_sections_with_paper1(tmp_path):
    out = results_folder(tmp_path, seeds=(0, 1, 2), n_images=20, net_sd=1.0, noise=0.2, spec=PAPER1)
    report = update_report(out, metrics=["psnr", "ssim"])
    md = (report / "report.md").read_text()
    assert "## As paper 1 analysed it" in md and "## Paper 1's published loss magnitudes" in md
    assert "not the AAPM-Mayo 2016 scans" in md  # phantom data: said so
    assert "in its `abdomen` window" in md and "seed-0 network of every configuration" in md
    pairs = pd.read_csv(report / "stats" / "paper1_pairs.csv")
    assert len(pairs) == 36 and pairs["changed"].iloc[0]
    pub = pd.read_csv(report / "stats" / "paper1_published.csv")
    assert len(pub) == 4 and pub["mse_measured"].notna().all()


def test_sections_absent_without_paper1(tmp_path):
    out = results_folder(tmp_path, seeds=(0, 1), n_images=12)
    report = update_report(out, metrics=["ssim"])
    md = (report / "report.md").read_text()
    assert "As paper 1 analysed it" not in md and "published loss magnitudes" not in md
    assert not (report / "stats" / "paper1_pairs.csv").exists()
    assert not (report / "stats" / "paper1_published.csv").exists()
