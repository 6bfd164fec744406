"""The reader-study folder (READER_DIR) shared by `study readers export | serve | analyze`.

    design.json     design (likert | 2afc), seed, results folder, criteria (5-point), window presets, reference
                    images shown (`show`), the 2AFC question
    cases.json      [{"case_id", "images": {role: {window id: "images/<random>.png"}}}] — nothing in it names a
                    configuration, run key, seed or patient; roles: likert "output", 2afc "a" and "b", plus `show`
    images/         8-bit lossless PNGs with random names; arrays/<case_id>_<role>.npy the float32 HU
    readers.json    {name: {"token": secret}} (never served)
    key.json        case_id → what it shows (image, patient, run key, configuration, seed): the unblinding key,
                    never opened by the server
    answers.sqlite  the answers (WAL), written by the server only, each the moment it is given
    analysis/       written by `study readers analyze`

Each reader sees every case, in an order of their own seeded by (design seed, reader name). `per_image_metrics`:
the results folder's test metrics the analysis compares the readers with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

DESIGN, CASES, READERS, KEY, ANSWERS = "design.json", "cases.json", "readers.json", "key.json", "answers.sqlite"
CHOICE = "choice"  # the 2AFC answer's criterion: value 0 = image a, 1 = image b

DEFAULT_CRITERIA = [
    {"id": "noise", "label": "Noise", "low": "severe", "high": "none"},
    {"id": "sharpness", "label": "Sharpness", "low": "very blurred", "high": "sharp"},
    {"id": "artefacts", "label": "Artefacts", "low": "severe", "high": "none"},
    {"id": "conspicuity", "label": "Lesion conspicuity", "low": "not visible", "high": "excellent"},
    {"id": "overall", "label": "Overall diagnostic acceptability", "low": "unacceptable", "high": "excellent"},
]
DEFAULT_WINDOWS = [
    {"id": "soft", "label": "Soft tissue", "center": 40, "width": 400},
    {"id": "liver", "label": "Liver", "center": 60, "width": 160},
    {"id": "bone", "label": "Bone", "center": 400, "width": 1800},
]
QUESTION_2AFC = "Which image would you rather read?"


def read_json(folder: Path, name: str):
    """A file of the reader folder; a missing or damaged one is a one-line StudyError naming it."""
    from study.errors import StudyError

    path = Path(folder) / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path}: not found — is {folder} a reader folder written by `study readers export`?") from None
    except (OSError, ValueError) as err:
        raise StudyError(f"{path}: unreadable ({type(err).__name__})") from None


def reader_order(design_seed: int, name: str, n: int) -> list[int]:
    """The order (indices into cases.json) in which reader `name` sees the `n` cases."""
    salt = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return [int(i) for i in np.random.default_rng([int(design_seed), salt]).permutation(n)]


def criteria_ids(design: dict) -> list[str]:
    """What one case asks of a reader: every criterion (likert) or the one choice (2afc)."""
    return [CHOICE] if design["design"] == "2afc" else [c["id"] for c in design["criteria"]]


def per_image_metrics(design: dict) -> tuple[pd.DataFrame, list[str]]:
    """The results folder's per-image metrics of the `test` set, and the quality metrics measured in it."""
    from study.metrics.registry import QUALITY_METRICS

    path = Path(design["results_dir"]) / "per_image.parquet"
    if not path.is_file():
        return pd.DataFrame(), []
    df = pd.read_parquet(path)
    df = df[df["test_set"] == "test"] if "test_set" in df else df
    names = [m for m in QUALITY_METRICS if m in df and pd.to_numeric(df[m], errors="coerce").notna().any()]
    return df, names
