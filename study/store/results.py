"""The results folder (a contract): one folder per trial under `trials/<run_key>/`, consolidated into
`trials.parquet` (one row per trial) and `per_image.parquet` (one row per trial × test image).

A trial is finished when its `result.json` says so; it is written last and atomically, so a killed trial is never
counted as finished. Parquet files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

STATES = ("finished", "running", "failed", "pending")
IDENTITY = "identity.json"
_NOT_IN_TABLE = {"spec", "traceback"}


def trial_dir(results_dir: Path, run_key: str) -> Path:
    return Path(results_dir) / "trials" / run_key


@contextlib.contextmanager
def replaced_folder(final: Path):
    """A temporary folder `.<name>-…` beside `final` to build its new content in: when the block ends it replaces
    `final` (the old content removed); when the block raises it is removed and `final` stays as it was."""
    final = Path(final)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield stage
        old = final.parent / f".{final.name}-old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        stage.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def write_json(path: Path, obj) -> None:
    """Atomically: a temporary file in the same folder, renamed into place (removed if writing fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path: Path) -> None:
    """`torch.save` to a temporary name in the same folder, then renamed into place (a checkpoint is never half
    written). torch is imported here, not at module import."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_study_id(results_dir: Path) -> str | None:
    """The study's identity (`identity.json`), written once when it starts and carried with the folder when it is
    moved or copied: what MLflow runs are found by. None for a folder no study has started in."""
    try:
        return json.loads((Path(results_dir) / IDENTITY).read_text())["study_id"]
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (json.JSONDecodeError, KeyError, TypeError, OSError) as err:
        from study.errors import StudyError

        raise StudyError(f"{Path(results_dir) / IDENTITY}: unreadable study identity ({type(err).__name__})") from None


def ensure_study_id(results_dir: Path, name: str) -> str:
    """The study's identity, created (atomically, first writer wins) if the folder has none yet."""
    import time
    import uuid

    found = read_study_id(results_dir)
    if found is not None:
        return found
    path = Path(results_dir) / IDENTITY
    fd, tmp = tempfile.mkstemp(dir=results_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"study_id": uuid.uuid4().hex, "name": name, "created": time.time()}, f)
    try:
        os.link(tmp, path)  # fails if another process wrote it first
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return read_study_id(results_dir)


def read_record(folder: Path) -> dict | None:
    """The trial's final record (finished or failed), or None."""
    p = Path(folder) / "result.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, OSError):
        return None


def trial_state(folder: Path) -> str:
    """finished | failed (from result.json) | running (its folder is locked by a live process) | pending.
    A trial whose process was killed left `running.json` but no lock: it is pending again."""
    from study.store.locks import is_locked

    rec = read_record(folder)
    if rec is not None:
        return rec["status"]
    folder = Path(folder)
    return "running" if (folder / "running.json").is_file() and is_locked(folder / ".lock") else "pending"


def collect(results_dir: Path, trials: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Consolidate trial folders into the two contract tables. `trials`: one dict per trial of the current grid
    (run_key, configuration and factor columns); trials not finished appear with their state and no metrics."""
    rows, images = [], []
    for t in trials:
        folder = trial_dir(results_dir, t["run_key"])
        rec = read_record(folder)
        row = dict(t)
        if rec is None:
            row["status"] = trial_state(folder)
        else:
            for k, v in rec.items():
                if k in _NOT_IN_TABLE or (k in row and k != "status"):
                    continue
                row[k] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
            pi = folder / "per_image.parquet"
            if rec["status"] == "finished" and pi.is_file():
                df = pd.read_parquet(pi)
                for k, v in t.items():
                    df[k] = v
                images.append(df)
        rows.append(row)
    trials_df = pd.DataFrame(rows)
    if "error" not in trials_df:
        trials_df["error"] = None
    first = ["run_key", "status", "configuration", "feature_level", "pretraining", "lam", "seed"]
    trials_df = trials_df[[c for c in first if c in trials_df] + [c for c in trials_df if c not in first]]
    per_image = pd.concat(images, ignore_index=True) if images else pd.DataFrame(columns=["run_key", "image_id"])
    if len(per_image):
        lead = ["run_key", "image_id", "patient", "configuration"]
        per_image = per_image[lead + [c for c in per_image if c not in lead]]
    return trials_df, per_image


def write_tables(results_dir: Path, trials: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    trials_df, per_image = collect(results_dir, trials)
    write_parquet(trials_df, Path(results_dir) / "trials.parquet")
    write_parquet(per_image, Path(results_dir) / "per_image.parquet")
    return trials_df, per_image


def refresh_tables(results_dir: Path) -> bool:
    """Rebuild the two tables from the trial folders of the folder's grid (`grid.json`), so a report shows what the
    folders hold now (a trial folder deleted since: pending). False for a folder with no grid or no trial folders
    (tables written by something else, e.g. a merged or synthetic study): left as they are."""
    from study.errors import StudyError

    grid = Path(results_dir) / "grid.json"
    if not grid.is_file() or not (Path(results_dir) / "trials").is_dir():
        return False
    try:
        rows = json.loads(grid.read_text())
        keys = [r["run_key"] for r in rows]
    except (ValueError, KeyError, TypeError) as err:
        raise StudyError(f"{grid}: not a grid written by `study run` ({type(err).__name__}: {str(err)[:200]})") from None
    if len(set(keys)) != len(keys):
        raise StudyError(f"{grid}: run keys repeat; not a grid written by `study run`")
    write_tables(results_dir, rows)
    return True
