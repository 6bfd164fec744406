"""Figures of the report in the shared style of `analysis.style`; each written as PNG (for the report) and as a vector
PDF twin (for a paper). Figures are `matplotlib.figure.Figure` objects, never pyplot's: importing this module changes
no backend and no rcParams; the style applies inside `report_style()`."""

from __future__ import annotations

from pathlib import Path

import contextlib

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from analysis import style
from analysis.load import BASELINE
from analysis.style import metric_label

TWINS = (".pdf",)  # written beside every PNG


def report_style():
    """A context in which figures get the report's look (analysis.style.STYLE); rcParams are restored after it."""
    return matplotlib.rc_context(style.STYLE)


def subplots(*args, figsize, **kw):
    """(figure, axes) like pyplot.subplots, without pyplot: no backend, no global figure manager."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kw)


def save(fig, path: Path) -> Path:
    """Lay out, write the PNG at `path` and its vector twins (same stem, .pdf), creating the folder; close the
    figure. Returns the PNG's path."""
    fig.tight_layout()
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=style.PNG_DPI)
    for suffix in TWINS:
        fig.savefig(path.with_suffix(suffix))
    return path


def boxplot(scores: pd.DataFrame, metric: str, path: Path, order: list[str] | None = None,
            reference: pd.Series | None = None) -> Path:
    """Per-image (seed-averaged) metric per configuration; the low-dose input as a dashed line (its median)."""
    order = order or list(scores.columns)
    fig, ax = subplots(figsize=(max(6, 0.7 * len(order) + 2), 4.2))
    ax.boxplot([scores[c].to_numpy() for c in order], showmeans=True)
    ax.set_xticks(range(1, len(order) + 1), order, rotation=35, ha="right", fontsize=8)
    if reference is not None:
        ax.axhline(float(reference.median()), ls="--", color="grey", lw=1, label="low-dose input (median)")
        ax.legend(fontsize=8, loc="best")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{style.metric_name(metric)} per test image (mean over seeds)")
    return save(fig, path)


def cd_diagram(ranks: pd.Series, pvalues: pd.DataFrame, path: Path, alpha: float = 0.05, title: str = "") -> Path:
    """Critical-difference diagram (scikit-posthocs): mean ranks on an axis, configurations joined by a bar when the
    given p-value matrix (here Wilcoxon–Holm) does not separate them at `alpha`."""
    import scikit_posthocs as sp

    fig, ax = subplots(figsize=(8, 0.35 * len(ranks) + 1.6))
    sp.critical_difference_diagram(ranks, pvalues, alpha=alpha, ax=ax, label_props={"fontsize": 8})
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def interaction_plot(cells: pd.DataFrame, metric: str, path: Path, x: str = "feature_level", hue: str = "pretraining",
                     panel: str | None = "lam", reference: float | None = None) -> Path:
    """Mean metric (over blocks) against `x`, one line per `hue` level, one panel per `panel` level:
    lines that are not parallel are the interaction the factor-effects table tests."""
    panels = sorted(cells[panel].unique()) if panel and panel in cells else [None]
    fig, axes = subplots(1, len(panels), figsize=(3.6 * len(panels) + 0.8, 3.4), sharey=True, squeeze=False)
    for ax, pv in zip(axes[0], panels):
        sub = cells if pv is None else cells[cells[panel] == pv]
        means = sub.groupby([hue, x])["y"].mean().unstack(x)
        for level, row in means.iterrows():
            ax.plot(list(row.index), row.to_numpy(), marker="o", label=str(level))
        if reference is not None:
            ax.axhline(reference, ls=":", color="grey", lw=1, label=BASELINE)
        ax.set_title(f"{style.factor_name(panel)} = {pv:g}" if isinstance(pv, float) else
                     f"{style.factor_name(panel)} = {pv}" if pv is not None else "", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlabel(style.factor_name(x))
    axes[0][0].set_ylabel(metric_label(metric, "mean"))
    axes[0][-1].legend(fontsize=7, title=style.factor_name(hue), title_fontsize=7)
    return save(fig, path)


def effects_plot(effects: pd.DataFrame, metric: str, path: Path) -> Path:
    """Forest plot of main and interaction effects: median per-image effect with its bootstrap 95% CI."""
    e = effects[effects["kind"].isin(["main", "interaction"])].reset_index(drop=True)
    fig, ax = subplots(figsize=(7.5, 0.32 * len(e) + 1.2))
    y = range(len(e))[::-1]
    ax.errorbar(e["median_diff"], list(y), xerr=[e["median_diff"] - e["ci_low"], e["ci_high"] - e["median_diff"]],
                fmt="o", color="k", ms=4, capsize=2)
    ax.axvline(0, color="grey", lw=1)
    labels = [f"{r.factor}: {r.a} vs {r.b}" if r.kind == "main" else f"{r.factor}: ({r.a}) {r.b}" for r in e.itertuples()]
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.set_xlabel(metric_label(metric, "median per-image effect on") + ", 95% bootstrap CI")
    return save(fig, path)


def heatmap(table: pd.DataFrame, path: Path, title: str, vmin: float = -1.0, vmax: float = 1.0,
            label: str = "") -> Path:
    """A annotated diverging heat map (rows × columns of `table`), NaN cells left blank."""
    import numpy as np

    fig, ax = subplots(figsize=(0.9 * table.shape[1] + 3, 0.45 * table.shape[0] + 1.8))
    im = ax.imshow(table.to_numpy(float), cmap="RdBu", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=8)
    for (i, j), v in np.ndenumerate(table.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title, fontsize=9)
    return save(fig, path)
