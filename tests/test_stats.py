"""analysis.stats against direct scipy/statsmodels calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from analysis.stats import format_p, friedman, mean_ranks, pairwise_wilcoxon, rank_biserial


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, size=20)
    return pd.DataFrame({"a": base + 1.0 + rng.normal(0, .3, 20), "b": base + rng.normal(0, .3, 20),
                         "c": base + 0.1 + rng.normal(0, .3, 20), "d": base - 0.5 + rng.normal(0, .3, 20)},
                        index=[f"img{i}" for i in range(20)])


def test_friedman_matches_scipy_and_kendalls_w(scores):
    res = friedman(scores)
    ref = sps.friedmanchisquare(*[scores[c] for c in scores])
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    n, k = scores.shape
    # Kendall's W from its own definition (no ties here): 12 S / (n² (k³ − k))
    r = scores.rank(axis=1).sum()
    s = ((r - r.mean()) ** 2).sum()
    assert res.kendall_w == pytest.approx(12 * s / (n**2 * (k**3 - k)))
    assert "Friedman χ²(3)" in res.line() and "Kendall's W" in res.line()


def test_friedman_needs_three_configurations(scores):
    with pytest.raises(ValueError, match="3 configurations"):
        friedman(scores[["a", "b"]])


def test_pairwise_wilcoxon_matches_scipy_and_holm(scores):
    out = pairwise_wilcoxon(scores)
    assert list(out.columns[:7]) == ["a", "b", "n", "median_diff", "statistic", "pvalue", "pvalue_adj"]
    assert len(out) == 6
    for row in out.itertuples():
        ref = sps.wilcoxon(scores[row.a], scores[row.b])
        assert row.statistic == pytest.approx(ref.statistic) and row.pvalue == pytest.approx(ref.pvalue)
    np.testing.assert_allclose(out["pvalue_adj"], multipletests(out["pvalue"], method="holm")[1])
    bh = pairwise_wilcoxon(scores, correction="fdr_bh")
    np.testing.assert_allclose(bh["pvalue_adj"], multipletests(bh["pvalue"], method="fdr_bh")[1])
    ab = out[(out.a == "a") & (out.b == "b")].iloc[0]
    assert ab.effect_size == 1.0 and ab.pvalue_adj < 0.001  # a is better on every image


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
