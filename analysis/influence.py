"""Perceptual influence across the study: Ψ-curves from measured loss magnitudes (paper 1's figure), the λ each
(feature level, pretraining) needs for a target Ψ, and metric against Ψ."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import save  # noqa: E402
from study.psi import lam_for_influence  # noqa: E402 - torch-free

TARGETS = (0.5, 0.9, 0.95, 0.99)
COMMON_LAM = 0.1


def magnitudes(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean last-epoch unweighted L_pixel and L_P per (feature level, pretraining), from finished trials that used
    the encoder (fixed λ > 0 or a Ψ target)."""
    t = trials[(trials["status"] == "finished") & (trials["perceptual_loss"].fillna(0) > 0)]
    if t.empty:
        return pd.DataFrame(columns=["feature_level", "pretraining", "pixel_loss", "perceptual_loss"])
    return t.groupby(["feature_level", "pretraining"])[["pixel_loss", "perceptual_loss"]].mean().reset_index()


def lam_table(mags: pd.DataFrame, targets=TARGETS) -> pd.DataFrame:
    rows = []
    for r in mags.itertuples():
        row = {"feature_level": r.feature_level, "pretraining": r.pretraining, "L_pixel": r.pixel_loss,
               "L_P": r.perceptual_loss, "psi_at_lam_0.1": COMMON_LAM * r.perceptual_loss /
               (r.pixel_loss + COMMON_LAM * r.perceptual_loss)}
        row.update({f"lam_for_psi_{p:g}": lam_for_influence(p, r.pixel_loss, r.perceptual_loss) for p in targets})
        rows.append(row)
    return pd.DataFrame(rows)


def psi_curves(mags: pd.DataFrame, path: Path, targets=(0.95,)) -> Path:
    lams = np.logspace(-9, 3, 400)
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in mags.itertuples():
        psi = lams * r.perceptual_loss / (r.pixel_loss + lams * r.perceptual_loss)
        ax.semilogx(lams, psi, label=f"{r.feature_level} · {r.pretraining}")
    ax.axvline(COMMON_LAM, ls="--", color="grey", lw=1, label="λ = 0.1 (common choice)")
    for p in targets:
        ax.axhline(p, ls=":", color="k", lw=1)
    ax.set_xlabel("λ")
    ax.set_ylabel("Ψ (perceptual share of the loss)")
    ax.set_title("Ψ-curves from the measured loss magnitudes", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return save(fig, path)


def metric_vs_psi(trials: pd.DataFrame, metric: str, path: Path) -> Path:
    t = trials[(trials["status"] == "finished")]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for (level, pre), g in t[t["psi"] > 0].groupby(["feature_level", "pretraining"]):
        ax.scatter(g["psi"], g[metric], s=18, label=f"{level} · {pre}")
    base = t[t["psi"].fillna(0) == 0]
    if len(base):
        ax.axhline(base[metric].mean(), ls=":", color="grey", label="pixel-only")
    ax.set_xlabel("measured Ψ (last epoch)")
    ax.set_ylabel(f"test {metric} (trial mean)")
    ax.legend(fontsize=7)
    return save(fig, path)


def influence_section(trials: pd.DataFrame, out: Path, metric: str = "psnr") -> list[str]:
    from analysis.sections import md_table

    mags = magnitudes(trials)
    if mags.empty:
        return []
    table = lam_table(mags)
    table.to_csv(out / "stats" / "lambda_for_psi.csv", index=False)
    targets = sorted({float(v) for v in trials.get("psi_target", pd.Series(dtype=float)).dropna()}) or [0.95]
    fig = psi_curves(mags, out / "figures" / "psi_curves.png", targets)
    lines = ["### Ψ-curves and the λ each encoder needs", "",
             "Ψ(λ) = λ·L_P / (L_pixel + λ·L_P) from the last-epoch magnitudes measured in this study (means over "
             "trials); dashed: λ = 0.1, dotted: Ψ target(s).", "", f"![Ψ-curves](figures/{fig.name})", "",
             md_table(table), ""]
    if metric in trials:
        fig = metric_vs_psi(trials, metric, out / "figures" / f"{metric}_vs_psi.png")
        lines += [f"![{metric} against Ψ](figures/{fig.name})", ""]
    cal = trials[trials.get("psi_target", pd.Series(index=trials.index, dtype=float)).notna()] if "psi_target" in trials else trials.iloc[:0]
    if len(cal):
        cols = [c for c in ("configuration", "seed", "psi_target", "lam_calibrated", "lam_final", "psi", "psi_grad") if c in cal]
        lines += ["Ψ-target trials: the λ calibrated at the start, λ at the end and the Ψ reached:", "",
                  md_table(cal[cols].sort_values(["configuration", "seed"])), ""]
    return lines
