"""analysis.stats against direct scipy/statsmodels calls."""

from __future__ import annotations

import warnings

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
    """Crossed random intercepts for image and trained network (REML), Wald χ² of the configuration terms."""
    rng = np.random.default_rng(2)
    rows = [{"block": f"i{i}", "configuration": c, "run_key": f"{c}{s}", "psnr": 30 + g + eff + net + rng.normal(0, .5)}
            for c, eff in (("base", 0), ("x", .8), ("y", .1)) for s, net in enumerate(rng.normal(0, .3, 3))
            for i, g in enumerate(np.random.default_rng(9).normal(0, 2, 15))]
    df = pd.DataFrame(rows)
    res = mixed_model(df, "psnr", reference="base")
    full = smf.mixedlm("psnr ~ C(configuration)", df.assign(one=1), groups="one",
                       vc_formula={"image": "0 + C(block)", "network": "0 + C(run_key)"}).fit(reml=True)
    assert res["ok"] and res["crossed"] and res["n_networks"] == 9 and res["df"] == 2
    coefs = res["coefficients"].set_index("configuration")["coef"]
    assert coefs["x"] == pytest.approx(full.params["C(configuration)[T.x]"], rel=1e-6)
    names = ["C(configuration)[T.x]", "C(configuration)[T.y]"]
    b = full.fe_params[names].to_numpy()
    wald = b @ np.linalg.solve(full.cov_params().loc[names, names].to_numpy(), b)
    assert res["wald"] == pytest.approx(wald, rel=1e-6) and res["pvalue"] == pytest.approx(sps.chi2.sf(wald, 2))
    # without a network column: a random intercept per image only
    only = mixed_model(df.drop(columns="run_key"), "psnr", reference="base")
    assert only["ok"] and not only["crossed"] and only["n_networks"] is None


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


def _difference_tables(seed, count, rows, cols, min_n=0):
    """Random paired-difference tables rounded so that ties and zeros occur, with all-zero and constant columns and
    NaNs (a NaN leaves that block out of that comparison only; none where a column could drop below `min_n`)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n, k = int(rng.integers(*rows, endpoint=True)), int(rng.integers(*cols, endpoint=True))
        d = rng.normal(rng.uniform(-0.3, 0.6), rng.uniform(0.5, 1.5), (n, k))
        d = np.column_stack([np.round(c, rng.choice([0, 1, 1, 3, 8])) for c in d.T])  # most columns tie, some don't
        if rng.random() < 0.3:
            d[:, rng.integers(k)] = 0.0
        if rng.random() < 0.3:
            d[:, rng.integers(k)] = 0.5
        if rng.random() < 0.4 and n - 3 >= min_n:
            d[rng.integers(n, size=3), rng.integers(k, size=3)] = np.nan
        yield d


def _per_column_wilcoxon(col):
    if np.all(col == 0):
        return np.nan, 1.0  # as wilcoxon_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.wilcoxon(col, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def _assert_wilcoxon_per_column(tables):
    from analysis.stats import paired_tests

    for d in tables:
        got = paired_tests(d, ci=False)
        cols = [d[:, j][~np.isnan(d[:, j])] for j in range(d.shape[1])]
        ref = np.array([_per_column_wilcoxon(c) for c in cols])
        np.testing.assert_array_equal(got["n"], [c.size for c in cols])
        np.testing.assert_allclose(got["statistic"], ref[:, 0], rtol=1e-9, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got["pvalue"], ref[:, 1], rtol=1e-9, atol=1e-12)


def test_paired_tests_choose_the_wilcoxon_null_per_column():
    """scipy's method="auto" picks exact / normal approximation once per call: one tie or zero in any column used to
    switch every column of the batched call to the normal approximation."""
    # n ≥ 14 (exact or normal approximation): the reference's permutation test at n ≤ 13 is slow (below)
    _assert_wilcoxon_per_column(_difference_tables(11, 400, rows=(14, 30), cols=(5, 15), min_n=14))


def test_paired_tests_small_samples_match_scipys_permutation_test():
    """n ≤ 13 with ties or zeros: scipy's exact sign-flip permutation test (computed here without scipy's
    per-column loop); tie-free columns beside them keep the exact null distribution."""
    _assert_wilcoxon_per_column(_difference_tables(12, 40, rows=(3, 8), cols=(4, 10)))
    d = np.random.default_rng(13).normal(0.4, 1, (13, 2))  # at n = 13 scipy takes about a second per column
    d[0, 1] = 0.0
    _assert_wilcoxon_per_column([d])


def test_paired_tests_median_cis_equal_per_column_median_ci():
    """Ties at the median make every jackknife median equal: a per-column BCa bootstrap is then undefined (0 / 0
    acceleration) and `median_ci` falls back to percentile, whereas the batched call used to get a spurious finite
    acceleration from rounding."""
    from analysis.stats import paired_tests

    n_cols = 0
    for d in _difference_tables(14, 30, rows=(8, 30), cols=(5, 15)):
        got = paired_tests(d)
        for j in range(d.shape[1]):
            col = d[:, j][~np.isnan(d[:, j])]
            np.testing.assert_allclose((got["ci_low"][j], got["ci_high"][j]), median_ci(col), rtol=1e-9, atol=1e-12)
            n_cols += 1
    assert n_cols >= 200


def test_nemenyi_critical_difference_matches_demsar():
    from analysis.stats import nemenyi_cd

    # Demšar (2006), critical values q_0.05 of the two-tailed Nemenyi test, k = 2 … 10 (CD = q_α √(k (k + 1) / (6 N)))
    q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
    for k, q in q05.items():
        assert nemenyi_cd(k, 1) / np.sqrt(k * (k + 1) / 6) == pytest.approx(q, abs=1e-3)
    assert nemenyi_cd(4, 14) == pytest.approx(1.25, abs=0.01)  # k = 4, N = 14
    assert nemenyi_cd(4, 14, alpha=0.10) < nemenyi_cd(4, 14) < nemenyi_cd(4, 7)


def test_friedman_line_says_the_statistic_is_tie_corrected(scores):
    assert "(tie-corrected)" in friedman(scores).line()


def test_holm_equals_statsmodels_with_ties_ones_and_nan():
    from analysis.stats import adjust

    rng = np.random.default_rng(4)
    for p in (rng.random(17) ** 3, np.array([0.01, 0.01, 0.04, 0.5, 1.0, 0.3]), np.array([0.2])):
        np.testing.assert_allclose(adjust(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
    got = adjust(np.array([0.01, np.nan, 0.02]))
    assert np.isnan(got[1]) and np.allclose(got[[0, 2]], [0.02, 0.02])
