"""Do the losses and the image-quality metrics agree? (the second study's question; pure pandas/scipy)

- Within a trial: the Spearman correlation, over epochs, between each loss term's trajectory and each validation
  metric's trajectory. `agreement` is signed so that > 0 means "the loss went down while the metric got better"
  (−ρ for higher-is-better metrics, +ρ for lower-is-better ones).
- Across configurations: the ranking each metric gives the configurations, their concordance (Kendall's W over
  the metrics, the Friedman statistic with metrics as blocks) and the pairwise Kendall τ between metrics.
- Disagreements: for each metric, the configuration it prefers against the configuration that optimised the loss
  matching it (MSE for PSNR and RMSE, SSIM for SSIM, ...), with how the two definitions differ (MATCH_DEFINITION):
  a "matching" loss optimises a related quantity, seldom the metric itself.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd
from scipy import stats as sps

from analysis.omnibus import friedman

#: which loss term optimises (the fidelity measured by) each metric
MATCHING_LOSS = {"psnr": "mse", "rmse_hu": "mse", "ssim": "ssim", "ms_ssim": "ms_ssim", "gmsd": "sobel"}
#: how far each metric's definition is from its matching loss's (a matching loss optimises a related quantity, not
#: always the metric itself: on 9 images the ssim loss's and the ssim metric's rankings agreed at Kendall τ 0.72 only)
MATCH_DEFINITION = {
    "psnr": "differs: the mse loss is taken on the training range (normalised HU, no window), PSNR in the metric "
            "window",
    "rmse_hu": "same quantity: RMSE (HU) over the whole slice is a monotone function of the mse loss's squared error",
    "ssim": "differs: the ssim loss is torchmetrics' SSIM (11×11 Gaussian window, σ 1.5) on the training range, the "
            "ssim metric scikit-image's (7×7 uniform window) in the metric window",
    "ms_ssim": "differs in range: both are torchmetrics' MS-SSIM, the loss on the training range, the metric in the "
               "metric window",
    "gmsd": "differs: the sobel loss is an L1 distance of Sobel gradients, GMSD the deviation of the gradient-magnitude "
            "similarity map in the metric window",
}


def trajectory_agreement(history: pd.DataFrame, terms: list[str], metrics: dict[str, bool]) -> pd.DataFrame:
    """`history`: one row per (run_key, epoch) with loss-term and metric columns; `metrics`: name → higher is
    better. One row per (run_key, term, metric): rho, pvalue, n_epochs, agreement."""
    rows = []
    for key, h in history.sort_values("epoch").groupby("run_key", sort=False):
        for term in terms:
            for metric, higher in metrics.items():
                x = h[[term, metric]].dropna()
                if len(x) < 3 or x[term].nunique() < 2 or x[metric].nunique() < 2:
                    continue
                rho, p = sps.spearmanr(x[term], x[metric])
                rows.append({"run_key": key, "term": term, "metric": metric, "rho": float(rho), "pvalue": float(p),
                             "n_epochs": len(x), "agreement": float(-rho if higher else rho)})
    return pd.DataFrame(rows, columns=["run_key", "term", "metric", "rho", "pvalue", "n_epochs", "agreement"])


def metric_ranks(means: pd.DataFrame, higher: dict[str, bool]) -> pd.DataFrame:
    """`means`: index = configuration, columns = metrics. Rank of each configuration per metric (1 = best)."""
    return pd.DataFrame({m: means[m].rank(ascending=not higher[m], method="average") for m in means.columns})


def ranking_concordance(means: pd.DataFrame, higher: dict[str, bool]) -> dict:
    """Kendall's W of the metrics' rankings (metrics = raters/blocks, configurations = items) and the pairwise
    Kendall τ between metrics."""
    ranks = metric_ranks(means, higher)
    fr = friedman(-ranks.T) if ranks.shape[0] >= 3 and ranks.shape[1] >= 2 else None
    taus = []
    for a, b in combinations(ranks.columns, 2):
        tau, p = sps.kendalltau(ranks[a], ranks[b])
        taus.append({"a": a, "b": b, "tau": float(tau), "pvalue": float(p)})
    return {"ranks": ranks, "kendall_w": fr.kendall_w if fr else float("nan"),
            "pvalue": fr.pvalue if fr else float("nan"), "tau": pd.DataFrame(taus, columns=["a", "b", "tau", "pvalue"])}


def disagreements(means: pd.DataFrame, higher: dict[str, bool], optimised: dict[str, str],
                  matching: dict[str, str] = MATCHING_LOSS) -> pd.DataFrame:
    """`optimised`: configuration → the loss term it was trained on (the main one). One row per metric that has a
    matching loss among the configurations: the configuration the metric prefers, the one that optimised the
    matching loss, and whether they are the same."""
    ranks = metric_ranks(means, higher)
    rows = []
    for metric in means.columns:
        loss = matching.get(metric)
        trained = [c for c, term in optimised.items() if term == loss and c in ranks.index]
        if not trained:
            continue
        prefers = ranks[metric].idxmin()
        rows.append({"metric": metric, "prefers": prefers, "matching_loss": loss, "optimised_by": trained[0],
                     "rank_of_optimised": float(ranks.loc[trained[0], metric]), "agree": prefers in trained,
                     "definitions": MATCH_DEFINITION.get(metric, "differs")})
    return pd.DataFrame(rows, columns=["metric", "prefers", "matching_loss", "optimised_by", "rank_of_optimised",
                                       "agree", "definitions"])
