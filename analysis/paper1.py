"""Paper 1 (Viana et al. 2025, arXiv 2509.23025) on its own terms: its statistics over every pair of models, set
beside the network-level analysis of the same pairs, and its published loss magnitudes beside the measured ones.

Small functions over tidy tables (one row per pair, one row per encoder); the Markdown is in `paper1_section`.
Paper 1's statistics, from its public code: for every pair of models a two-sided `scipy.stats.wilcoxon` on the
per-slice SSIM, no correction, α = 0.05, |Cohen's d| with the pooled SD (ddof = 1); the model with the larger mean
"wins" when p < 0.05. It trained one network per model (one seed).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from analysis.claims import Settings, verdict
from analysis.influence import magnitudes
from analysis.load import higher_is_better
from analysis.networks import contrasts, tost
from analysis.pvalues import adjust, p_clause
from analysis.signed_rank import paired_tests
from study.losses.psi import perceptual_influence  # torch-free

PAPER_ALPHA = 0.05
PAPER_LAM = 0.1
#: Paper 1's last-epoch loss magnitudes (MSE on (HU + 1024) / 4096 images, unweighted L_P), from the authors' public
#: training logs of arXiv 2509.23025 (Viana et al. 2025, "Perceptual Influence"); the one place they are written.
PUBLISHED_SOURCE = "arXiv 2509.23025 (Viana et al. 2025), the authors' public training logs, last epoch"
PUBLISHED = (
    {"encoder": "imagenet", "feature_level": "block3_conv2", "mse": 9.70e-5, "l_p": 422.3},
    {"encoder": "imagenet", "feature_level": "block5_conv4", "mse": 1.24e-4, "l_p": 0.513},
    {"encoder": "medical", "feature_level": "block3_conv2", "mse": 1.61e-4, "l_p": 163.6},
    {"encoder": "medical", "feature_level": "block5_conv4", "mse": 1.10e-4, "l_p": 8.19},
)


# -- paper 1's statistics -----------------------------------------------------------------------------------------
def first_seed_scores(per_image: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Wide table (index = test image, columns = configuration) of each configuration's first-seed network (the
    lowest seed it has a result for: paper 1 trained one network per model); images missing a configuration are
    dropped. Also the seed used per configuration."""
    x = per_image.dropna(subset=[metric])
    first = x.groupby("configuration")["seed"].transform("min")
    x = x[x["seed"] == first]
    wide = x.groupby(["image_id", "configuration"])[metric].mean().unstack("configuration").dropna()
    seeds = x.groupby("configuration")["seed"].first()
    return wide, {str(c): int(s) for c, s in seeds.items()}


def cohens_d(a, b) -> float:
    """Cohen's d = (mean a − mean b) / pooled SD, the pooled SD from both samples' variances (ddof = 1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    diff = a.mean() - b.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / pooled)


def paper_pairs(scores: pd.DataFrame, alpha: float = PAPER_ALPHA) -> pd.DataFrame:
    """Every pair (a, b) of the columns of `scores` as paper 1 tested it: two-sided Wilcoxon signed-rank (scipy's
    defaults), uncorrected; |Cohen's d| (pooled SD, ddof = 1); `winner` the larger mean when p < alpha, else None."""
    cols = list(scores.columns)
    pairs = list(combinations(cols, 2))
    if not pairs:
        return pd.DataFrame(columns=["a", "b", "mean_a", "mean_b", "statistic", "pvalue", "abs_d", "winner", "n_images"])
    v = scores.to_numpy(float)
    ia, ib = (np.array([cols.index(p[k]) for p in pairs]) for k in (0, 1))
    tests = paired_tests(v[:, ia] - v[:, ib], ci=False)  # = scipy.stats.wilcoxon(a, b) per pair, vectorised
    mean_a, mean_b = v[:, ia].mean(axis=0), v[:, ib].mean(axis=0)
    d = [abs(cohens_d(v[:, i], v[:, j])) for i, j in zip(ia, ib)]
    winner = [(a if ma > mb else b) if p < alpha and ma != mb else None
              for a, b, ma, mb, p in zip((p[0] for p in pairs), (p[1] for p in pairs), mean_a, mean_b, tests["pvalue"])]
    return pd.DataFrame({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs], "mean_a": mean_a, "mean_b": mean_b,
                         "statistic": tests["statistic"], "pvalue": tests["pvalue"], "abs_d": d, "winner": winner,
                         "n_images": len(scores)})


# -- the network-level analysis of the same pairs -------------------------------------------------------------------
def network_pairs(nets, metric: str, pairs: pd.DataFrame, s: Settings) -> pd.DataFrame:
    """The network-level contrast a − b of each pair (t on per-network means, all seeds; Holm over the pairs; TOST
    inside ± the smallest effect), its verdict from a's side and the winner it establishes (None unless better/worse
    with at least `min_seeds` networks per configuration). `nets`: the metric's analysis.networks.Networks."""
    have = set(nets.config_means.index)
    keep = [a in have and b in have for a, b in zip(pairs["a"], pairs["b"])]
    p = pairs.loc[keep, ["a", "b"]].reset_index(drop=True)
    if not len(p):
        return p.assign(**{k: [] for k in ("estimate", "ci_low", "ci_high", "p_adj", "p_equiv", "verdict", "net_winner",
                                             "seeds")})
    c = contrasts(nets, [{a: 1.0, b: -1.0} for a, b in zip(p["a"], p["b"])])
    delta = s.effect(metric)
    c["p_adj"] = adjust(c["pvalue"].to_numpy(), "holm")
    c["p_equiv"] = adjust(tost(c["estimate"], c["se"], c["df"], delta), "holm")
    higher = higher_is_better(metric)
    kinds = [verdict(r["estimate"], r["p_adj"], r["p_equiv"], delta, higher, s.alpha) for r in c.to_dict("records")]
    counts = nets.config_counts
    seeds = [int(min(counts[a], counts[b])) for a, b in zip(p["a"], p["b"])]
    win = [(a if k == "better" else b) if k in ("better", "worse") and n >= s.min_seeds else None
           for a, b, k, n in zip(p["a"], p["b"], kinds, seeds)]
    return pd.concat([p, c[["estimate", "ci_low", "ci_high", "p_adj", "p_equiv"]]], axis=1).assign(
        verdict=kinds, net_winner=win, seeds=seeds)


def guideline_verdicts(vs_best: pd.DataFrame | None, metric: str) -> dict[frozenset, str]:
    """The guidelines' own verdict on the pairs they test (configurations against the best), keyed by the pair."""
    if vs_best is None or not len(vs_best) or "metric" not in vs_best:
        return {}
    t = vs_best[vs_best["metric"] == metric]
    names = {"better": "{a} better", "worse": "{b} better", "equivalent": "equivalent", "undecided": "undecided"}
    return {frozenset((r.a, r.b)): names.get(r.verdict, r.verdict).format(a=r.a, b=r.b) for r in t.itertuples()}


def _paper_text(r) -> str:
    what = f"{r.winner} better" if r.winner else "no difference"
    return f"{what} ({p_clause(r.pvalue)}, |d| = {r.abs_d:.2f})"


def _network_text(r, min_seeds: int, delta: float) -> str:
    if not np.isfinite(r.p_adj):
        return "not testable (one network per configuration: no between-network error)"
    est = f"Δ = {r.estimate:+.3g}, {p_clause(r.p_adj, 'p_adj')}"
    if r.verdict in ("better", "worse"):
        side = r.a if r.verdict == "better" else r.b
        if r.seeds < min_seeds:
            return f"not established: would be {side} better ({est}), but {r.seeds} seed(s) < {min_seeds}"
        return f"{side} better ({est})"
    if r.verdict == "equivalent":
        return f"equivalent (inside ±{delta:g}, {p_clause(r.p_equiv, 'p_equiv')})"
    return f"not established ({est})"


def _name(x):
    return x if isinstance(x, str) else None


def compare(paper: pd.DataFrame, network: pd.DataFrame, s: Settings, metric: str,
            guidelines: dict[frozenset, str] | None = None) -> pd.DataFrame:
    """One row per pair: paper-style and network-level conclusions in words, `changed` when they name a different
    winner (or one names a winner and the other none); changed pairs first, then by the paper-style p-value."""
    t = paper.merge(network, on=["a", "b"], how="left")
    t["paper_style"] = [_paper_text(r) for r in t.itertuples()]
    t["network_level"] = [_network_text(r, s.min_seeds, s.effect(metric)) if pd.notna(r.verdict) else "not in the "
                          "network-level table" for r in t.itertuples()]
    t["guidelines"] = [(guidelines or {}).get(frozenset((a, b)), "—") for a, b in zip(t["a"], t["b"])]
    t["changed"] = [_name(w) != _name(n) for w, n in zip(t["winner"], t["net_winner"])]
    return t.sort_values(["changed", "pvalue"], ascending=[False, True], kind="stable").reset_index(drop=True)


# -- published loss magnitudes ----------------------------------------------------------------------------------
def published() -> pd.DataFrame:
    """The published rows with Ψ at λ = 0.1 from the magnitudes (study.losses.psi.perceptual_influence)."""
    t = pd.DataFrame(PUBLISHED)
    return t.assign(psi=[perceptual_influence(m, lp, PAPER_LAM) for m, lp in zip(t["mse"], t["l_p"])])


def _paper_trials(trials: pd.DataFrame, encoders: dict[str, str]) -> pd.DataFrame:
    """Finished trials in paper 1's setting: one of its two feature levels, a pretraining the spec maps to one of its
    encoders, a perceptual term, and paper 1's loss (no named `loss` factor, whose pixel term may not be MSE)."""
    if not {"feature_level", "pretraining", "pixel_loss", "perceptual_loss"} <= set(trials.columns):
        return trials.iloc[:0]
    t = trials[(trials["status"] == "finished") & trials["feature_level"].isin({r["feature_level"] for r in PUBLISHED})
               & trials["pretraining"].isin(set(encoders.values())) & (trials["perceptual_loss"].fillna(0) > 0)]
    return t[t["loss"].isna()] if "loss" in t else t


def _fold(measured: float, paper: float) -> float:
    r = measured / paper
    return max(r, 1 / r) if r > 0 else float("inf")


def measured_vs_published(trials: pd.DataFrame, encoders: dict[str, str]) -> pd.DataFrame:
    """The four published rows with the measured last-epoch magnitudes beside them (mean over the trials of the
    λ = 0.1 arm where there is one, else the fixed-λ arm nearest 0.1 on a log scale), the ratios measured / published,
    Ψ at λ = 0.1 from both and a verdict ("within 2×" / "off by N×" on the worse of the two magnitudes)."""
    mags = magnitudes(_paper_trials(trials, encoders))
    mags = mags[mags["arm_lam"].notna()]  # the fixed-λ arms
    rows = []
    for p in published().itertuples():
        m = mags[(mags["feature_level"] == p.feature_level) & (mags["pretraining"] == encoders.get(p.encoder))]
        row = {"encoder (paper 1)": p.encoder, "feature_level": p.feature_level,
               "pretraining": encoders.get(p.encoder, "—"), "arm": "—", "n": 0, "mse_published": p.mse,
               "mse_measured": np.nan, "mse_ratio": np.nan, "l_p_published": p.l_p, "l_p_measured": np.nan,
               "l_p_ratio": np.nan, "psi_published": p.psi, "psi_measured": np.nan, "verdict": "not measured"}
        if len(m):
            lam = m["arm_lam"].astype(float)
            r = m.loc[(np.log10(lam) - np.log10(PAPER_LAM)).abs().idxmin()]
            fold = max(_fold(r.pixel_loss, p.mse), _fold(r.perceptual_loss, p.l_p))
            row.update(arm=r.arm, n=int(r.n), mse_measured=r.pixel_loss, mse_ratio=r.pixel_loss / p.mse,
                       l_p_measured=r.perceptual_loss, l_p_ratio=r.perceptual_loss / p.l_p,
                       psi_measured=perceptual_influence(r.pixel_loss, r.perceptual_loss, PAPER_LAM),
                       verdict="within 2×" if fold <= 2 else f"off by {fold:.3g}×")
        rows.append(row)
    return pd.DataFrame(rows)


def uses_paper_setting(trials: pd.DataFrame, encoders: dict[str, str]) -> bool:
    return bool(len(_paper_trials(trials, encoders)))


__all__ = ["PUBLISHED", "PUBLISHED_SOURCE", "cohens_d", "compare", "first_seed_scores", "guideline_verdicts",
           "measured_vs_published", "network_pairs", "paper_pairs", "published", "uses_paper_setting"]
