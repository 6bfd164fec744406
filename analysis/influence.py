"""Perceptual influence across the study: Ψ-curves from measured loss magnitudes (paper 1's figure), the λ each
(feature level, pretraining, training arm) needs for a target Ψ, and metric against Ψ.

Loss magnitudes depend on the λ (or Ψ target) a network was trained with, so they are never averaged across
training arms: an arm is "λ=<lam>" for fixed-λ trials and "Ψ=<psi_target>" for Ψ-target trials."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from analysis.load import BASELINE
from study.planning.grid import weighting_label
from analysis.figures import save, subplots
from analysis.style import metric_label
from analysis.markdown import md_table
from study.losses.psi import lam_for_influence, perceptual_influence  # torch-free

TARGETS = (0.5, 0.9, 0.95, 0.99)
COMMON_LAM = 0.1
GROUP = ["feature_level", "pretraining", "arm"]
STYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3))]
PSI_FORMULA = "λ·L_P / (L_pixel + λ·L_P)"  # what study.losses.psi.perceptual_influence computes
PSI = f"Ψ = {PSI_FORMULA}"
PSI_TEXT = (f"{PSI}. For fixed-λ trials it is computed from the unweighted last-epoch means, "
            "λ·L̄_P / (L̄_pix + λ·L̄_P); for hold-Ψ trials, whose λ changes within an epoch, from the λ-weighted "
            "per-step sums of the last epoch: the epoch mean of λ_t·L_P,t over (L̄_pix + that mean).")


def arm(trials: pd.DataFrame) -> pd.Series:
    """The training arm of each trial: "Ψ=<psi_target>" where a Ψ target was set, else "λ=<lam>"."""
    psi = trials["psi_target"] if "psi_target" in trials else pd.Series(np.nan, index=trials.index)
    lam = trials["lam"] if "lam" in trials else pd.Series(np.nan, index=trials.index)
    return pd.Series([weighting_label(lam_, p) for p, lam_ in zip(psi, lam)], index=trials.index, dtype=object)


def magnitudes(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean last-epoch L_pixel and unweighted L_P per (feature level, pretraining, arm), from finished trials that
    used the encoder; `n` = trials averaged; `arm_lam` / `arm_psi`: the arm's fixed λ or Ψ target (the other NaN)."""
    t = trials[(trials["status"] == "finished") & (trials["perceptual_loss"].fillna(0) > 0)]
    cols = [*GROUP, "n", "pixel_loss", "perceptual_loss", "arm_lam", "arm_psi"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    psi = t["psi_target"] if "psi_target" in t else pd.Series(np.nan, index=t.index)
    lam = t["lam"] if "lam" in t else pd.Series(np.nan, index=t.index)
    t = t.assign(arm=arm(t), arm_psi=psi, arm_lam=lam.where(psi.isna()))
    g = t.groupby(GROUP, dropna=False)
    out = (g[["pixel_loss", "perceptual_loss"]].mean().join(g.size().rename("n"))
           .join(g[["arm_lam", "arm_psi"]].first()).reset_index())
    # fixed λ first, by value, then Ψ targets
    out = out.assign(_fixed=out["arm_lam"].isna(), _v=out["arm_lam"].fillna(out["arm_psi"]))
    out = out.sort_values(["feature_level", "pretraining", "_fixed", "_v"]).reset_index(drop=True)
    return out[cols]


def lam_table(mags: pd.DataFrame, targets=TARGETS) -> pd.DataFrame:
    """One row per (feature level, pretraining, arm): its magnitudes, Ψ at λ = 0.1 and the λ for each target Ψ."""
    rows = []
    for r in mags.itertuples():
        row = {"feature_level": r.feature_level, "pretraining": r.pretraining, "arm": r.arm, "n": r.n,
               "L_pixel": r.pixel_loss, "L_P": r.perceptual_loss,
               "psi_at_lam_0.1": perceptual_influence(r.pixel_loss, r.perceptual_loss, COMMON_LAM)}
        row.update({f"lam_for_psi_{p:g}": lam_for_influence(p, r.pixel_loss, r.perceptual_loss) for p in targets})
        rows.append(row)
    return pd.DataFrame(rows)


def psi_curves(mags: pd.DataFrame, path: Path, targets=(0.95,)) -> Path:
    """Ψ(λ) per (feature level, pretraining, arm): colour per (feature level, pretraining), line style per arm."""
    lams = np.logspace(-9, 3, 400)
    pairs = list(dict.fromkeys(zip(mags["feature_level"], mags["pretraining"])))
    arms = list(dict.fromkeys(mags["arm"]))
    colours = {p: matplotlib.colormaps["tab10"](i % 10) for i, p in enumerate(pairs)}
    styles = {a: STYLES[i % len(STYLES)] for i, a in enumerate(arms)}
    fig, ax = subplots(figsize=(7.5, 4.2))
    for r in mags.itertuples():
        psi = [perceptual_influence(r.pixel_loss, r.perceptual_loss, lam) for lam in lams]
        ax.semilogx(lams, psi, color=colours[(r.feature_level, r.pretraining)], ls=styles[r.arm], lw=1.3)
    ax.axvline(COMMON_LAM, color="grey", lw=0.8, alpha=0.6)
    for p in targets:
        ax.axhline(p, color="grey", lw=0.8, alpha=0.6)
    handles = [Line2D([], [], color=c, label=f"{lv} · {pre}") for (lv, pre), c in colours.items()]
    handles += [Line2D([], [], color="k", ls=s, label=f"trained at {a}") for a, s in styles.items()]
    ax.legend(handles=handles, fontsize=6, loc="upper left", ncol=2 if len(handles) > 8 else 1)
    ax.set_xlabel("λ")
    ax.set_ylabel("Ψ (perceptual share of the loss)")
    ax.set_title("Ψ-curves from the loss magnitudes measured per training arm", fontsize=9)
    return save(fig, path)


def metric_vs_psi(trials: pd.DataFrame, metric: str, path: Path) -> Path:
    """Test metric of each finished trial against its measured last-epoch Ψ; pixel-only mean as a line."""
    t = trials[(trials["status"] == "finished")]
    fig, ax = subplots(figsize=(6.5, 3.8))
    for (level, pre), g in t[t["psi"] > 0].groupby(["feature_level", "pretraining"]):
        ax.scatter(g["psi"], g[metric], s=18, label=f"{level} · {pre}")
    base = t[t["psi"].fillna(0) == 0]
    if len(base):
        ax.axhline(base[metric].mean(), ls=":", color="grey", label=BASELINE)
    ax.set_xlabel("measured Ψ (last epoch)")
    ax.set_ylabel(metric_label(metric, "test") + ", trial mean")
    ax.legend(fontsize=7)
    return save(fig, path)


def _calibrated(trials: pd.DataFrame) -> pd.DataFrame | None:
    cal = trials[trials["psi_target"].notna()] if "psi_target" in trials else trials.iloc[:0]
    if cal.empty:
        return None
    cols = [c for c in ("configuration", "seed", "psi_target", "lam_calibrated", "lam_final", "psi", "psi_grad") if c in cal]
    return cal[cols].sort_values(["configuration", "seed"])


def influence_evidence(trials: pd.DataFrame):
    """Ψ and the loss magnitudes per configuration (mean over seeds), the magnitudes per arm and the λ table
    (analysis.evidence.Influence); None when the trials carry no Ψ."""
    from analysis.evidence import Influence

    psi_cols = [c for c in ("psi", "perceptual_loss", "pixel_loss") if c in trials]
    psi = trials[trials["status"] == "finished"].groupby("configuration")[psi_cols].mean()
    if not (len(psi) and psi_cols):
        return None
    mags = magnitudes(trials)
    targets = sorted({float(v) for v in trials.get("psi_target", pd.Series(dtype=float)).dropna()}) or [0.95]
    return Influence(psi, mags, lam_table(mags) if len(mags) else pd.DataFrame(), targets, _calibrated(trials))


def influence_lines(inf, trials: pd.DataFrame, out: Path, metric: str = "psnr") -> list[str]:
    """Markdown lines (Ψ definition, Ψ-curves figure, λ table, metric-vs-Ψ figure, Ψ-target trials); writes
    stats/lambda_for_psi.csv and the figures under `out`."""
    if inf.magnitudes.empty:
        return []
    inf.lam_table.to_csv(out / "stats" / "lambda_for_psi.csv", index=False)
    fig = psi_curves(inf.magnitudes, out / "figures" / "psi_curves.png", inf.targets)
    lines = ["### Ψ-curves and the λ each encoder needs", "", PSI_TEXT, "",
             f"The curves Ψ(λ) = {PSI_FORMULA} use the last-epoch magnitudes L_pixel and L_P (unweighted), "
             "averaged only over trials trained the same way — one curve and one table row per feature level, "
             "pretraining and training arm (λ=… fixed λ, Ψ=… Ψ target), since the magnitudes depend on the λ a network "
             "was trained with. Colour: feature level · pretraining; line style: training arm; grey lines: λ = 0.1 "
             "and the Ψ target(s).", "", f"![Ψ-curves](figures/{fig.name})", "", md_table(inf.lam_table), ""]
    if metric in trials:
        fig = metric_vs_psi(trials, metric, out / "figures" / f"{metric}_vs_psi.png")
        lines += [f"![{metric} against Ψ](figures/{fig.name})", ""]
    if inf.calibrated is not None:
        lines += ["Ψ-target trials: the λ calibrated at the start, λ at the end and the Ψ reached:", "",
                  md_table(inf.calibrated), ""]
    return lines


def perceptual_influence_lines(inf, trials: pd.DataFrame, out: Path) -> list[str]:
    """The report's "Perceptual influence" section (stats/perceptual_influence.csv), then `influence_lines`."""
    if inf is None:
        return []
    inf.psi.reset_index().to_csv(out / "stats" / "perceptual_influence.csv", index=False)
    return ["", "## Perceptual influence", "",
            f"{PSI} at the last epoch, mean over seeds: for fixed-λ trials from the "
            "unweighted epoch means of both terms; for Ψ-target trials that hold Ψ (`hold-psi`) from the "
            "λ-weighted per-step sums (λ changes within the epoch).", "", md_table(inf.psi.reset_index()), "",
            *influence_lines(inf, trials, out)]
