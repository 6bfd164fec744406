"""analysis.stats against direct scipy/statsmodels calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

import scikit_posthocs as sp
import statsmodels.formula.api as smf
from statsmodels.stats.power import TTestPower

from analysis.stats import (conover, format_p, friedman, mean_ranks, median_ci, mixed_model, nemenyi, pairwise_wilcoxon,
                            power_n, pvalue_matrix, rank_biserial)


@pytest.fixture(params=["continuous", "ties"])
def scores(request):
    """Random scores; the "ties" variant is rounded so that ranks tie and some paired differences are zero."""
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, size=20)
    df = pd.DataFrame({"a": base + 1.0 + rng.normal(0, .3, 20), "b": base + rng.normal(0, .3, 20),
                       "c": base + 0.1 + rng.normal(0, .3, 20), "d": base - 0.5 + rng.normal(0, .3, 20)},
                      index=[f"img{i}" for i in range(20)])
    if request.param == "ties":
        df = df.round(0)
        df.loc[df.index[:4], "c"] = df.loc[df.index[:4], "b"]  # zero differences
    return df


def test_friedman_matches_scipy_and_kendalls_w(scores):
    res = friedman(scores)
    ref = sps.friedmanchisquare(*[scores[c] for c in scores])
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    n, k = scores.shape
    # Kendall's W from its definition with the tie correction: 12 S / (n² (k³ − k) − n Σ(t³ − t))
    ranks = scores.rank(axis=1)
    r = ranks.sum()
    s = ((r - r.mean()) ** 2).sum()
    ties = sum(((c := np.unique(row, return_counts=True)[1]) ** 3 - c).sum() for row in scores.to_numpy())
    assert res.kendall_w == pytest.approx(12 * s / (n**2 * (k**3 - k) - n * ties))
    # Iman–Davenport F from χ²
    f = (n - 1) * ref.statistic / (n * (k - 1) - ref.statistic)
    assert res.iman_davenport_f == pytest.approx(f)
    assert res.iman_davenport_pvalue == pytest.approx(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))
    assert "Friedman χ²(3)" in res.line() and "Kendall's W" in res.line()


def test_friedman_needs_three_configurations(scores):
    with pytest.raises(ValueError, match="3 configurations"):
        friedman(scores[["a", "b"]])


def test_pairwise_wilcoxon_matches_scipy_and_holm(scores):
    out = pairwise_wilcoxon(scores)
    assert list(out.columns[:6]) == ["a", "b", "statistic", "pvalue", "pvalue_adj", "effect_size"]
    assert len(out) == 6
    for row in out.itertuples():
        ref = sps.wilcoxon(scores[row.a], scores[row.b])
        assert row.statistic == pytest.approx(ref.statistic) and row.pvalue == pytest.approx(ref.pvalue)
    np.testing.assert_allclose(out["pvalue_adj"], multipletests(out["pvalue"], method="holm")[1])
    bh = pairwise_wilcoxon(scores, correction="fdr_bh")
    np.testing.assert_allclose(bh["pvalue_adj"], multipletests(bh["pvalue"], method="fdr_bh")[1])
    ab = out[(out.a == "a") & (out.b == "b")].iloc[0]
    assert ab.effect_size > 0.9 and ab.pvalue_adj < 0.01  # a is better on (nearly) every image
    for row in out.itertuples():
        assert row.ci_low <= row.median_diff <= row.ci_high


def test_rank_biserial_sign_and_range():
    assert rank_biserial([2, 3, 4], [1, 1, 1]) == 1.0
    assert rank_biserial([1, 1, 1], [2, 3, 4]) == -1.0
    # d = [1, -2, 3]: ranks 1, 2, 3 → (1 + 3 − 2) / 6
    assert rank_biserial([1, 0, 3], [0, 2, 0]) == pytest.approx(2 / 6)
    assert rank_biserial([1, 1], [1, 1]) == 0.0


def test_mean_ranks_and_p_format(scores):
    ranks = mean_ranks(scores)
    assert ranks.index[0] == "a" and ranks.index[-1] == "d"
    assert mean_ranks(scores, higher_is_better=False).index[0] == "d"
    assert format_p(1e-5) == "< 0.001" and format_p(0.0314) == "0.031"


def test_bootstrap_ci_of_the_median_covers_and_matches_scipy():
    rng = np.random.default_rng(1)
    d = rng.normal(0.5, 1.0, 60)
    lo, hi = median_ci(d, seed=3)
    ref = sps.bootstrap((d,), np.median, n_resamples=2000, method="BCa", rng=np.random.default_rng(3))
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval))
    assert lo < np.median(d) < hi
    assert median_ci(np.zeros(5)) == (0.0, 0.0)  # degenerate: no spread


def test_posthoc_matrices_match_scikit_posthocs(scores):
    n = nemenyi(scores)
    c = conover(scores)
    ref_n = sp.posthoc_nemenyi_friedman(scores.to_numpy())
    ref_c = sp.posthoc_conover_friedman(scores.to_numpy(), p_adjust="holm")
    np.testing.assert_allclose(n.to_numpy(), ref_n.to_numpy())
    np.testing.assert_allclose(c.to_numpy(), ref_c.to_numpy())
    assert list(n.index) == list(scores.columns)


def test_pvalue_matrix_is_symmetric(scores):
    pw = pairwise_wilcoxon(scores, ci=False)
    m = pvalue_matrix(pw)
    assert (m.to_numpy() == m.to_numpy().T).all() and (np.diag(m) == 1).all()
    row = pw.iloc[0]
    assert m.loc[row.a, row.b] == row.pvalue_adj


def test_mixed_model_matches_statsmodels():
    rng = np.random.default_rng(2)
    rows = [{"block": f"i{i}", "configuration": c, "psnr": 30 + g + eff + rng.normal(0, .5)}
            for i, g in enumerate(rng.normal(0, 2, 15)) for c, eff in (("base", 0), ("x", .8), ("y", .1)) for _ in range(2)]
    df = pd.DataFrame(rows)
    res = mixed_model(df, "psnr", reference="base")
    full = smf.mixedlm("psnr ~ C(configuration)", df, groups=df["block"]).fit(reml=False)
    null = smf.mixedlm("psnr ~ 1", df, groups=df["block"]).fit(reml=False)
    assert res["ok"] and res["lr"] == pytest.approx(2 * (full.llf - null.llf), rel=1e-6)
    coefs = res["coefficients"].set_index("configuration")["coef"]
    assert coefs["x"] == pytest.approx(full.params["C(configuration)[T.x]"], rel=1e-6)
    assert res["pvalue"] < 0.001 and res["df"] == 2


def test_power_from_observed_differences():
    rng = np.random.default_rng(4)
    d = rng.normal(0.3, 1.0, 40)
    dz = d.mean() / d.std(ddof=1)
    n_t = TTestPower().solve_power(effect_size=dz, power=0.8, alpha=0.05)
    assert power_n(d) == np.ceil(n_t / (3 / np.pi))
    assert power_n(d, effect=0.6) < power_n(d)  # a larger effect needs fewer images
    assert power_n(d, alpha=0.001) > power_n(d)
    assert power_n(np.full(10, 5.0) + rng.normal(0, 1e-3, 10)) == 6  # huge effect: the exact test's floor
    assert np.isnan(power_n(np.zeros(10)))


def test_vectorised_paired_tests_equal_the_per_column_ones():
    from analysis.stats import paired_tests, wilcoxon_pair

    rng = np.random.default_rng(4)
    d = np.round(rng.normal(0.2, 1, (20, 12)), 1)  # ties and zeros
    d[:, 3] = 0.0
    d[:, 4] = 0.7  # no spread
    d[5, 6] = np.nan  # one block missing in one comparison
    got = paired_tests(d)
    for j in range(d.shape[1]):
        col = d[:, j][~np.isnan(d[:, j])]
        stat, p = wilcoxon_pair(col, np.zeros_like(col))
        assert got["pvalue"][j] == pytest.approx(p) and got["n"][j] == col.size
        assert got["statistic"][j] == pytest.approx(stat, nan_ok=True)
        assert got["effect_size"][j] == pytest.approx(rank_biserial(col, np.zeros_like(col)))
        assert (got["ci_low"][j], got["ci_high"][j]) == pytest.approx(median_ci(col))
