"""The report's "Stages" section of an adaptive study: which seeds came from which stage and why (from
RESULTS_DIR/stages.json, written by `study run` when it decided stage 2), and the α its claims use."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

MAX_ROWS = 40  # configurations listed by name (the rest counted)


def stages_evidence(results_dir: Path, trials: pd.DataFrame) -> dict | None:
    """The stage record with each configuration's trials per stage (from the trials table), or None."""
    path = Path(results_dir) / "stages.json"
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
    except ValueError:
        return {"error": f"{path} is not JSON"}
    if "stage" in trials and len(trials):
        done = trials[trials["status"] == "finished"]
        rec["counts"] = {str(c): {int(s): int(n) for s, n in g.groupby("stage").size().items()}
                         for c, g in done.groupby("configuration")}
    return rec


def stages_lines(rec: dict | None) -> list[str]:
    if rec is None:
        return []
    if "error" in rec:
        return ["## Stages (adaptive seeds)", "", f"The stage record could not be read: {rec['error']}.", ""]
    first, second = rec["stages"][0], (rec["stages"][1:] or [None])[0]
    lines = ["## Stages (adaptive seeds)", "",
             f"Stage 1 trained every configuration {rec['min_seeds']} times (seeds {_seeds(first['seeds'])}; "
             f"{first['trials']} trials). On its {rec['metric']} networks the between-network variance (never the "
             f"effects) gave the seeds per configuration at which two configurations that differ by the smallest "
             f"effect are separated with power {rec['power']:g} by the report's max-t over all pairs; a screen spent "
             f"α₁ = {rec['alpha_screen']:g} to set aside the configurations already decided. The claims of this report "
             f"are made at α₂ = {rec['alpha_final']:g} (α = {rec['alpha']:g} minus the screen's α₁).", ""]
    if second is None:
        return lines + ["Stage 2 is not decided yet: stage 1 is not over.", ""]
    d = second["decision"]
    need = d["seeds_needed"] if d["seeds_needed"] is not None else f"more than {rec['max_seeds']}"
    lines += [f"**Stage 2** (decided {second['decided_at']}): {second['why']}. Seeds needed: {need}; stage 2 added "
              f"{second['trials']} trials. Leader at stage 1: {d['leader']}.", "",
              "| configuration | networks (stage 1 + stage 2) | why |", "|---|---|---|"]
    counts = rec.get("counts", {})
    rows = sorted(d["seeds"], key=lambda c: (-d["seeds"][c], c))
    for c in rows[:MAX_ROWS]:
        n = counts.get(c, {})
        got = f"{n.get(1, 0)} + {n.get(2, 0)}" if n else f"{rec['min_seeds']} + {len(second['added'].get(c, []))}"
        lines.append(f"| {c} | {got} | {d['why'][c]} |")
    if len(rows) > MAX_ROWS:
        lines.append(f"| … {len(rows) - MAX_ROWS} more | | |")
    return lines + [""]


def _seeds(seeds: list[int]) -> str:
    return ", ".join(str(s) for s in seeds)
