"""Convergence at the last epoch: which trials were still improving on their validation metric when the fixed
epoch budget ran out (from each trial's history.json). Pure pandas/numpy/json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import higher_is_better, read_history, unit_suffix

COLUMNS = ["run_key", "configuration", "seed", "metric", "n_epochs", "last", "gain", "best_at_last", "improving"]


def _trend(history: list[dict], metric: str, min_effect: dict[str, float]) -> dict:
    """The last epoch's value, its oriented gain over the epoch before, and the flags, for one history."""
    used = metric if any(f"val_{metric}" in h for h in history) else "psnr"
    if used not in min_effect:
        raise KeyError(f"min_effect has no entry for {used!r} (have: {sorted(min_effect)})")
    values = np.array([float(h.get(f"val_{used}", np.nan)) for h in history], dtype=float)
    sign = 1.0 if higher_is_better(used) else -1.0
    oriented = sign * values
    gain = oriented[-1] - oriented[-2] if len(values) >= 2 else np.nan
    best_at_last = bool(np.isfinite(oriented[-1]) and oriented[-1] >= np.nanmax(oriented))
    improving = bool(len(values) >= 2 and gain >= min_effect[used] and best_at_last)  # NaN gain compares False
    return {"metric": used, "n_epochs": len(history), "last": values[-1], "gain": gain,
            "best_at_last": best_at_last, "improving": improving}


def still_improving(results_dir, trials: pd.DataFrame, min_effect: dict[str, float],
                    metric: str = "psnr") -> pd.DataFrame:
    """One row per finished trial with a non-empty history.json (others skipped): run_key, configuration, seed,
    metric (val_psnr as fallback), n_epochs, last, gain (positive = better), best_at_last, improving."""
    rows = []
    for t in trials[trials["status"] == "finished"].itertuples():
        history = read_history(Path(results_dir), t.run_key)
        if history:
            rows.append({"run_key": t.run_key, "configuration": t.configuration, "seed": t.seed,
                         **_trend(history, metric, min_effect)})
    return pd.DataFrame(rows, columns=COLUMNS)


def improving_configurations(table: pd.DataFrame) -> dict[str, float]:
    """Configuration → fraction of its trials still improving, for configurations where that is at least half."""
    if table.empty:
        return {}
    frac = table.groupby("configuration")["improving"].mean()
    return {str(c): float(f) for c, f in frac.items() if f >= 0.5}


def convergence_lines(table: pd.DataFrame, metric: str, min_effect) -> list[str]:
    """Markdown for the report's "Convergence" section (heading included); [] for an empty table."""
    if table.empty:
        return []
    threshold = min_effect[metric] if isinstance(min_effect, dict) and metric in min_effect else min_effect
    marked = improving_configurations(table)
    n_conf = table["configuration"].nunique()
    lines = ["## Convergence", "",
             f"{int(table['improving'].sum())} of {len(table)} trials were still improving on validation {metric} at "
             f"their last epoch (last-epoch gain ≥ the smallest effect that matters, and the best epoch is the last); "
             f"{len(marked)} of {n_conf} configurations have at least half their seeds still improving."]
    fallback = table[table["metric"] != metric]
    if len(fallback):
        lines[-1] += f" {len(fallback)} trial(s) did not record val_{metric}: judged on val_psnr instead."
    if isinstance(threshold, (int, float)):
        lines[-1] += f" Smallest effect: {threshold:g}{unit_suffix(metric)}."
    if marked:
        lines += [""]
        for conf, frac in marked.items():
            g = table[table["configuration"] == conf]
            used = metric if (g["metric"] == metric).any() else "psnr"  # psnr: the fallback
            gain = g.loc[g["metric"] == used, "gain"].median()
            lines += [f"- **{conf}**: {frac:.0%} of seeds still improving; median last-epoch gain "
                      f"{gain:+.3g}{unit_suffix(used)} ({used})."]
        lines += ["", "A fixed epoch budget favours configurations that learn fast: for the configurations above, "
                  "the budget, not the loss design, may explain their rank — they might place higher with more epochs."]
    return lines + [""]
