"""Results folder → tidy DataFrames, and the per-image score matrices the tests run on."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from study.errors import StudyError

from study.spec.metric_names import HIGHER_IS_BETTER  # the one metric table

from study.planning.grid import BASELINE  # noqa: F401 - the baseline's configuration label, made there


def higher_is_better(metric: str) -> bool:
    """The metric's direction (`HIGHER_IS_BETTER`); a metric the registry does not know counts as higher-is-better."""
    return HIGHER_IS_BETTER.get(metric, True)


def unit_suffix(metric: str) -> str:
    """' dB', ' HU', ... (the metric's unit, study.spec.metric_names.METRIC_INFO, after a space) or '' for a unitless metric."""
    from analysis.style import unit

    u = unit(metric)
    return f" {u}" if u else ""


def read_history(results_dir: str | Path, run_key: str) -> list[dict] | None:
    """A trial's per-epoch history (`trials/<run_key>/history.json`), or None when it has none."""
    path = Path(results_dir) / "trials" / str(run_key) / "history.json"
    return json.loads(path.read_text()) if path.is_file() else None


_NEEDED = {"trials.parquet": ("run_key", "status", "configuration", "seed"),
           "per_image.parquet": ("run_key", "image_id")}


def load_results(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of a results folder; a missing, unreadable or foreign table is a one-line StudyError."""
    d = Path(results_dir)
    tables = []
    for name, needed in _NEEDED.items():
        if not (d / name).is_file():
            raise StudyError(f"{d / name}: not found — is {d} a results folder of `study run`?")
        try:
            df = pd.read_parquet(d / name)
        except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            raise StudyError(f"{d / name}: not a readable parquet table ({type(err).__name__}: {str(err)[:200]}); "
                             f"`study run --report-only` rebuilds it from the trial folders") from None
        missing = [c for c in needed if c not in df]
        if missing and not (name == "per_image.parquet" and df.empty):
            raise StudyError(f"{d / name}: not a table written by `study run` (no column {', '.join(missing)})")
        tables.append(df)
    return tables[0], tables[1]


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
