"""`study status`: where a study stands, from its results folder alone (works while SLURM jobs run it)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from study.errors import StudyError
from study.store.results import STATES, read_record, trial_dir, trial_state


def summarize(results_dir: Path, now: float | None = None) -> dict:
    """Counts by state, one row per trial (state, wall_s, attempts, error, host), trial-hours used and an ETA at
    the rate trials have been finishing so far (None before two have finished; failed trials, which may end in
    seconds, do not count towards the rate)."""
    results_dir = Path(results_dir)
    grid = results_dir / "grid.json"
    if not grid.is_file():
        raise StudyError(f"{results_dir}: no grid.json — not a results folder of `study run` or `study submit`")
    now = now or time.time()
    rows = json.loads(grid.read_text())
    ends, starts, used = [], [], 0.0
    for r in rows:
        folder = trial_dir(results_dir, r["run_key"])
        r["state"] = trial_state(folder)
        rec = read_record(folder) or {}
        r["wall_s"], r["error"], r["attempts"] = rec.get("wall_s"), rec.get("error"), rec.get("attempts")
        if rec.get("finished_at") and rec.get("wall_s") is not None:
            used += rec["wall_s"]
            if rec.get("status") == "finished":
                ends.append(rec["finished_at"])
                starts.append(rec["finished_at"] - rec["wall_s"])
        if r["state"] == "running":
            info = json.loads((folder / "running.json").read_text())
            r["host"], r["running_s"] = info.get("host"), now - info.get("started", now)
            used += r["running_s"]
    counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
    left = counts["pending"] + counts["running"]
    eta = None
    if len(ends) >= 2 and max(ends) > min(starts):
        rate = len(ends) / (max(ends) - min(starts))  # trials per second, all workers together
        eta = left / rate
    return {"counts": counts, "trials": rows, "trial_hours": used / 3600, "eta_s": eta if left else 0.0}


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown (fewer than two trials finished)"
    if seconds == 0:
        return "nothing left to run"
    if seconds < 60:
        return "ETA < 1 min at the rate so far"
    h, m = divmod(int(round(seconds / 60)), 60)
    return f"ETA {h} h {m:02d} min at the rate so far"


def used_text(hours: float) -> str:
    """Trial time used, in a unit that shows it (a tiny study is seconds, not "0.00 trial-hours")."""
    seconds = hours * 3600
    if seconds < 120:
        return f"{seconds:.0f} trial-seconds used"
    if seconds < 7200:
        return f"{seconds / 60:.1f} trial-minutes used"
    return f"{hours:.2f} trial-hours used"
