"""The report's "Do the losses and the metrics agree?" section (the loss-function study's question).

Reads each finished trial's `history.json` (loss terms and validation metrics per epoch) and the per-image test
metrics; the numbers come from `analysis.consistency`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.consistency import disagreements, ranking_concordance, trajectory_agreement
from analysis.figures import heatmap
from analysis.load import HIGHER_IS_BETTER, read_history
from analysis.markdown import MAX_ROWS, md_table
from analysis.omnibus import square_matrix

DISAGREE_TAU = 0.5  # pairs of metrics whose rankings correlate less than this are called out


def load_histories(results_dir: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (finished trial, epoch): run_key, configuration, epoch and the logged terms and metrics."""
    frames = []
    for key, config in trials.loc[trials["status"] == "finished", ["run_key", "configuration"]].itertuples(index=False):
        history = read_history(results_dir, key)
        if history is not None:
            frames.append(pd.DataFrame(history).assign(run_key=key, configuration=config))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def last_epoch_shares(history: pd.DataFrame) -> pd.DataFrame:
    """configuration × term: each term's share of the total loss at the last epoch, mean over seeds."""
    cols = [c for c in history if c.startswith("share_")]
    last = history.sort_values("epoch").groupby("run_key").tail(1)
    return last.groupby("configuration")[cols].mean().rename(columns=lambda c: c.removeprefix("share_"))


def dominant_terms(shares: pd.DataFrame) -> dict[str, str]:
    """configuration → the term with the largest share (`last_epoch_shares`), the configurations trained on one term
    alone first (they are what "the loss optimised" means most plainly)."""
    if not shares.shape[1]:  # histories written before terms were logged
        return {}
    top = shares.max(axis=1).sort_values(ascending=False, kind="stable")
    return {c: shares.loc[c].idxmax() for c in top.index}


def consistency_evidence(results_dir: Path, trials: pd.DataFrame, per_image: pd.DataFrame, metrics: list[str]):
    """analysis.evidence.Consistency from the trials' histories and the per-image metrics; None without histories
    or with fewer than 2 configurations."""
    from analysis.evidence import Consistency

    history = load_histories(results_dir, trials)
    if history.empty or "configuration" not in per_image or per_image["configuration"].nunique() < 2:
        return None
    shares = last_epoch_shares(history)
    parts: dict = {}
    terms = [c for c in history if c.startswith("loss_")] + ["train_loss"]
    val = {f"val_{m}": h for m, h in HIGHER_IS_BETTER.items() if f"val_{m}" in history}
    traj = trajectory_agreement(history, terms, val)
    if len(traj):
        table = traj.groupby(["term", "metric"])["agreement"].mean().unstack("metric")
        table = table.reindex(index=[t for t in terms if t in table.index], columns=[m for m in val if m in table])
        parts |= {"trajectories": traj, "trajectory_table": table, "n_epochs": int(traj["n_epochs"].median())}
    used = [m for m in metrics if m in per_image and per_image[m].notna().any()]
    means = per_image.groupby(["configuration", "run_key"])[used].mean().groupby("configuration").mean()
    means = means.dropna(axis=1)  # a metric missing for a configuration cannot rank it
    if len(means) >= 3 and means.shape[1] >= 2:
        higher = {m: HIGHER_IS_BETTER[m] for m in means.columns}
        parts |= {"means": means, "concordance": ranking_concordance(means, higher),
                  "disagreements": disagreements(means, higher, dominant_terms(shares))}
    return Consistency(shares, **parts)


def consistency_lines(c, out: Path) -> list[str]:
    """Markdown lines, CSVs under stats/, heat maps under figures/ (c: analysis.evidence.Consistency)."""
    if c is None:
        return []
    return ["## Do the losses and the metrics agree?", "", *composition_lines(c.shares, out),
            *trajectory_lines(c, out), *ranking_lines(c, out)]


def composition_lines(shares: pd.DataFrame, out: Path) -> list[str]:
    """0. What each configuration's loss was made of: Ψ generalised to k terms, at the last epoch."""
    if not shares.shape[1]:
        return []
    shares.reset_index().to_csv(out / "stats" / "loss_term_shares.csv", index=False)
    return ["**Loss composition.** Share of each term in the total loss at the last epoch, |w·L| / Σ|w·L| "
            "(Ψ generalised to k terms; mean over seeds; per epoch in MLflow as share_<term>):", "",
            md_table(shares.reset_index(), "{:.3f}"), ""]


def trajectory_lines(c, out: Path) -> list[str]:
    """1. Within trials: loss-term trajectories against validation-metric trajectories over epochs."""
    if c.trajectories is None:
        return []
    c.trajectories.to_csv(out / "stats" / "consistency_trajectories.csv", index=False)
    table = c.trajectory_table
    heatmap(table, out / "figures" / "consistency_trajectories.png",
            "loss term vs validation metric over epochs (mean signed Spearman ρ; > 0 = agree)", label="agreement")
    return [f"**Within trials.** For each trial, the Spearman correlation over its {c.n_epochs} epochs (median) "
            f"between each loss term and each validation metric, signed so that > 0 means the metric improved "
            f"as the term fell; mean over the trials that use the term:", "",
            "![trajectory agreement](figures/consistency_trajectories.png)", "",
            md_table(table.reset_index(), "{:.2f}"), ""]


def ranking_lines(c, out: Path) -> list[str]:
    """2. Across configurations: do the metrics rank the configurations alike? And 3., does each metric prefer the
    configuration trained on its own loss?"""
    if c.concordance is None:
        return []
    conc, means = c.concordance, c.means
    ranks, tau = conc["ranks"], conc["tau"]
    ranks.reset_index().to_csv(out / "stats" / "consistency_ranks.csv", index=False)
    tau.to_csv(out / "stats" / "consistency_tau.csv", index=False)
    heatmap(square_matrix(tau, "tau"), out / "figures" / "consistency_tau.png",
            f"Kendall τ between the metrics' rankings of {len(means)} configurations", label="τ")
    shown_ranks = ranks.loc[ranks.mean(axis=1).sort_values(kind="stable").index[:MAX_ROWS]]
    lines = [f"**Across configurations.** Each test metric ranks the {len(means)} configurations (test-set means, "
             f"seeds averaged; 1 = best). Kendall's W over the {means.shape[1]} metrics = **{conc['kendall_w']:.2f}** "
             f"(Friedman p = {conc['pvalue']:.3g}; 1 = identical rankings). Pairwise Kendall τ:", "",
             "![metric rank agreement](figures/consistency_tau.png)", "",
             md_table(shown_ranks.reset_index(), "{:.1f}"), ""]
    if len(ranks) > len(shown_ranks):
        lines += [f"(the {len(shown_ranks)} configurations with the best mean rank; all {len(ranks)} in "
                  f"stats/consistency_ranks.csv)", ""]
    lines += tau_lines(tau)
    dis = c.disagreements
    if len(dis):  # 3. "metric prefers X, loss optimised Y"
        dis.to_csv(out / "stats" / "consistency_disagreements.csv", index=False)
        lines += ["**Does each metric prefer the configuration trained on its own loss?** (the loss a configuration "
                  "optimised = its dominant term, the largest share of its total loss at the last epoch; "
                  "`definitions` says where the loss and the metric measure different things: the ssim loss is "
                  "not the ssim metric, so a disagreement there is partly one of definitions)", "",
                  md_table(dis, "{:.1f}"), ""]
    return lines


def tau_lines(tau: pd.DataFrame) -> list[str]:
    """The metric pairs whose rankings disagree (τ < DISAGREE_TAU), the strongest first."""
    low = tau[tau["tau"] < DISAGREE_TAU].sort_values("tau")
    if not len(low):
        return [f"All metric pairs agree with τ ≥ {DISAGREE_TAU}.", ""]
    shown = low.head(10)
    return [f"{len(low)} of {len(tau)} metric pairs disagree (τ < {DISAGREE_TAU}); the strongest: " + "; ".join(
                f"{r.a} vs {r.b} (τ = {r.tau:.2f})" for r in shown.itertuples(index=False))
            + (" (all in stats/consistency_tau.csv)." if len(low) > len(shown) else "."), ""]
