"""Results folder → tidy DataFrames, and the per-image score matrices the tests run on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from study.metrics import QUALITY_METRICS as HIGHER_IS_BETTER  # noqa: F401  (torch-free: skimage, numpy)

BASELINE = "pixel-only"


def load_results(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = Path(results_dir)
    for name in ("trials.parquet", "per_image.parquet"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name}: not found — is {d} a results folder of `study run`?")
    return pd.read_parquet(d / "trials.parquet"), pd.read_parquet(d / "per_image.parquet")


def block_key(per_image: pd.DataFrame) -> str:
    """The column that names a block: `block` (images sharing an anatomical position share it) or `image_id`."""
    return "block" if "block" in per_image and per_image["block"].notna().all() else "image_id"


def block_scores(per_image: pd.DataFrame, metric: str, block: str | None = None,
                 config: str = "configuration") -> tuple[pd.DataFrame, int]:
    """Wide table: index = block (test image), columns = configuration, cell = the metric averaged over seeds
    (and over the images of a block).

    Blocks missing any configuration are dropped (the tests need complete blocks); returns the table and how many
    blocks were dropped.
    """
    if metric not in per_image:
        raise KeyError(f"metric {metric!r} not in the per-image table (have: {sorted(per_image.columns)})")
    block = block or block_key(per_image)
    # mean over the images of a block within each trial, then over the trials (seeds) of a configuration
    per_trial = per_image.groupby([block, config, "run_key"])[metric].mean()
    wide = per_trial.groupby(level=[0, 1]).mean().unstack(config)
    complete = wide.dropna()
    return complete, len(wide) - len(complete)


def input_scores(per_image: pd.DataFrame, metric: str, block: str | None = None) -> pd.Series:
    """The low-dose input's metric per block (the same for every trial)."""
    return per_image.groupby(block or block_key(per_image))[f"input_{metric}"].mean()


def seed_scores(per_image: pd.DataFrame, metric: str, seed, block: str | None = None) -> pd.DataFrame:
    """Like `block_scores` for the trials of one seed only (a sensitivity check on the seed averaging)."""
    x = per_image[per_image["seed"] == seed]
    return block_scores(x, metric, block)[0]


def split_test_sets(per_image: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The main test set (analysed with the tests) and any extra test sets (e.g. "real" slices, descriptive only)."""
    if "test_set" not in per_image or per_image.empty:
        return per_image, {}
    main = per_image[per_image["test_set"].fillna("test") == "test"]
    extra = {name: g for name, g in per_image.groupby("test_set") if name != "test"}
    return main, extra
