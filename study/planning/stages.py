"""The trials of an adaptive study (`adaptive:` in the spec): stage 1's, and those its recorded stage-2 decision
added (RESULTS_DIR/stages.json, written once by study.running.stages). Reads that record; writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from study.errors import StudyError
from study.planning.grid import Trial
from study.spec import StudySpec
from study.spec.adaptive import seed_values

STAGES_FILE = "stages.json"


def read_stages(out: Path) -> dict | None:
    """The folder's stage record, or None before stage 2 is decided; an unreadable one is a one-line error."""
    path = Path(out) / STAGES_FILE
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
        rec["stages"], rec["seeds"]
    except (ValueError, KeyError, TypeError) as err:
        raise StudyError(f"{path}: not a stage record written by `study run` ({type(err).__name__})") from None
    return rec


def all_seeds(spec: StudySpec) -> list[int]:
    """Seed values of networks 0 … max_seeds − 1 of every configuration."""
    return seed_values(spec.factors.seed, spec.adaptive.max_seeds)


def with_all_seeds(spec: StudySpec) -> StudySpec:
    """The spec whose factors.seed lists every seed an adaptive study may use (the grid before the stage filter)."""
    return spec.model_copy(update={"factors": spec.factors.model_copy(update={"seed": all_seeds(spec)})})


def staged(spec: StudySpec, trials: list[Trial], out: Path) -> tuple[list[Trial], dict[str, int]]:
    """(the trials of the stages decided so far, run key → stage): stage 1 is every configuration's first
    `min_seeds` seeds; stage 2 the seeds its record added per configuration."""
    seeds = all_seeds(spec)
    first = set(seeds[:spec.adaptive.min_seeds])
    rec = read_stages(out)
    added = {}
    if rec is not None:
        if rec["seeds"][:len(first)] != seeds[:len(first)]:
            raise StudyError(f"{Path(out) / STAGES_FILE}: its stage 1 seeds {rec['seeds'][:len(first)]} are not the "
                             f"spec's {seeds[:len(first)]} (was factors.seed or adaptive changed?)")
        added = {c: set(v) for st in rec["stages"][1:] for c, v in st.get("added", {}).items()}
    keep, stage = [], {}
    for t in trials:
        if t.seed in first:
            stage[t.run_key] = 1
        elif t.seed in added.get(t.configuration, ()):
            stage[t.run_key] = 2
        else:
            continue
        keep.append(t)
    return keep, stage
