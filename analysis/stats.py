"""Tests over per-image score matrices (index = block/test image, columns = configuration): the public API.

Small functions over tidy tables; scipy, statsmodels and scikit-posthocs do the tests, the modules below make the
choices: Friedman with Kendall's W (and the Iman–Davenport F) for the omnibus question, pairwise two-sided Wilcoxon
signed-rank tests with Holm correction and the matched-pairs rank-biserial correlation as effect size, the median
paired difference with a bootstrap confidence interval, Nemenyi/Conover post-hoc tests, and a mixed model as a
sensitivity check.

- `analysis.omnibus`: Friedman, mean ranks, Nemenyi (and its critical difference), Conover, square p-value matrices;
- `analysis.signed_rank`: Wilcoxon signed-rank tests (one pair, columns of differences, all pairs), rank-biserial r,
  images needed for power;
- `analysis.bootstrap`: bootstrap CIs of the median paired difference;
- `analysis.pvalues`: p-value formatting and family-wise / false-discovery adjustment;
- `analysis.mixed`: the mixed model.
"""

from __future__ import annotations

from analysis.bootstrap import median_ci, median_cis
from analysis.mixed import mixed_model
from analysis.omnibus import (FriedmanResult, conover, friedman, mean_ranks, nemenyi, nemenyi_cd, pvalue_matrix,
                              square_matrix)
from analysis.pvalues import adjust, format_p, p_clause
from analysis.signed_rank import pairwise_wilcoxon, paired_tests, power_n, rank_biserial, wilcoxon_pair

__all__ = ["FriedmanResult", "adjust", "conover", "format_p", "friedman", "mean_ranks", "median_ci", "median_cis",
           "mixed_model", "nemenyi", "nemenyi_cd", "p_clause", "paired_tests", "pairwise_wilcoxon", "power_n",
           "pvalue_matrix", "rank_biserial", "square_matrix", "wilcoxon_pair"]
