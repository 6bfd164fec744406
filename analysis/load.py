"""Results folder → tidy DataFrames, and the per-image score matrices the tests run on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "rmse_hu": False}
BASELINE = "pixel-only"


def load_results(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = Path(results_dir)
    for name in ("trials.parquet", "per_image.parquet"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name}: not found — is {d} a results folder of `study run`?")
    return pd.read_parquet(d / "trials.parquet"), pd.read_parquet(d / "per_image.parquet")


def block_scores(per_image: pd.DataFrame, metric: str, block: str = "image_id",
                 config: str = "configuration") -> tuple[pd.DataFrame, int]:
    """Wide table: index = block (test image), columns = configuration, cell = the metric averaged over seeds.

    Blocks missing any configuration are dropped (the tests need complete blocks); returns the table and how many
    blocks were dropped.
    """
    if metric not in per_image:
        raise KeyError(f"metric {metric!r} not in the per-image table (have: {sorted(per_image.columns)})")
    wide = per_image.groupby([block, config])[metric].mean().unstack(config)
    complete = wide.dropna()
    return complete, len(wide) - len(complete)


def input_scores(per_image: pd.DataFrame, metric: str, block: str = "image_id") -> pd.Series:
    """The low-dose input's metric per image (the same for every trial)."""
    return per_image.groupby(block)[f"input_{metric}"].mean()
