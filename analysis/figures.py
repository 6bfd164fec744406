"""Figures of the report (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def boxplot(scores: pd.DataFrame, metric: str, path: Path, order: list[str] | None = None,
            reference: pd.Series | None = None) -> Path:
    """Per-image (seed-averaged) metric per configuration; the low-dose input as a dashed line (its median)."""
    order = order or list(scores.columns)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(order) + 2), 4.2))
    ax.boxplot([scores[c].to_numpy() for c in order], showmeans=True)
    ax.set_xticks(range(1, len(order) + 1), order, rotation=35, ha="right", fontsize=8)
    if reference is not None:
        ax.axhline(float(reference.median()), ls="--", color="grey", lw=1, label="low-dose input (median)")
        ax.legend(fontsize=8, loc="best")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per test image (mean over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
