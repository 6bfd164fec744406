"""Run one trial and write its folder; the same code behind every backend (local, Ray, SLURM).

Folder `trials/<run_key>/`: `running.json` while it runs, `checkpoint.pt` after each epoch, then `model.pt` (the
selected weights), `per_image.parquet`, `history.json`, `examples.png` and `examples.npz` (the example slices of
`study.trial.examples`, for the report's side-by-side figure; neither with `tracking.example_images: 0`) and, last,
`result.json` (status finished or failed); the checkpoint of a finished trial is then removed unless
`training.keep_checkpoint`. A trial that raises is retried (see `execute`) and then recorded as failed with its
reason; the study goes on.
`events.log` keeps one JSON line per start, retry and end: the audit trail that exactly-once checks read.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from study.store.events import log_event, read_events
from study.store.locks import file_lock, try_lock
from study.store.provenance import git_commit, package_versions
from study.store.results import read_record, write_json, write_parquet
from study.trial.examples import write_npz
from study.trial.loop import Diverged
from study.trial.spec import TrialSpec
from study.trial.train import run_trial


def _examples_png(examples: dict, window, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = window.bounds
    fig, axes = plt.subplots(len(examples), 3, figsize=(9, 3 * len(examples)), squeeze=False)
    for row, (image_id, imgs) in zip(axes, examples.items()):
        for ax, img, title in zip(row, imgs, ("low dose", "output", "full dose")):
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{image_id} · {title}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def execute(spec: TrialSpec, on_epoch: Optional[Callable[[int, dict], None]] = None, retries: int = 0) -> dict:
    """Run the trial unless already finished; return its record (the row of trials.parquet).

    Exactly once: the trial folder is locked while the trial runs, so a second process given the same trial (a
    resumed driver beside a worker that outlived the old one, two SLURM tasks) waits and then finds it finished.
    A failure is retried `retries` times from the last checkpoint, except divergence (deterministic on a seed).
    """
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with file_lock(out / ".lock"):
        done = read_record(out)
        if done is not None and done["status"] == "finished":
            return done
        started = time.time()
        write_json(out / "running.json", {"host": socket.gethostname(), "pid": os.getpid(), "started": started})
        base = _base(spec)
        for attempt in range(retries + 1):
            log_event(out, "start", attempt=attempt)
            try:
                result = run_trial(spec, on_epoch)
                write_parquet(pd.DataFrame(result.per_image), out / "per_image.parquet")
                write_json(out / "history.json", result.history)
                if len(result.examples):
                    _examples_png(result.examples.images, spec.window, out / "examples.png")
                    write_npz(out / "examples.npz", result.examples, spec.window)
                record = {**base, "status": "finished", **result.summary, "error": None}
                break
            except Exception as err:  # noqa: BLE001 - a failing trial must not stop the study
                record = {**base, "status": "failed", "error": f"{type(err).__name__}: {err}".strip()[:2000],
                          "traceback": traceback.format_exc()[-4000:], "wall_s": time.time() - started}
                if isinstance(err, Diverged) or attempt == retries:
                    break
                log_event(out, "retry", error=record["error"][:300])
        record = _close(out, record)
        if record["status"] == "finished" and not spec.training.keep_checkpoint:
            (out / "checkpoint.pt").unlink(missing_ok=True)  # model.pt holds the selected weights
        return record


def _base(spec: TrialSpec) -> dict:
    return {"run_key": spec.run_key, "configuration": spec.configuration, **spec.factors(),
            "data_id": spec.data_id, "data_sha256": spec.data_sha256,
            "encoder_id": spec.encoder_id, "encoder_sha256": spec.encoder_sha256, "git_commit": git_commit(),
            "versions": package_versions(), "spec": spec.to_dict()}


def _close(out: Path, record: dict) -> dict:
    """Write the trial's record (last, atomically) and its end event; the caller holds the trial's lock."""
    record["attempts"] = sum(e["event"] == "start" for e in read_events(out))
    record["finished_at"] = time.time()
    write_json(out / "result.json", record)
    log_event(out, record["status"], **({"error": record["error"][:300]} if record.get("error") else {}))
    (out / "running.json").unlink(missing_ok=True)
    return record


def record_failure(spec: TrialSpec, reason: str, details: Optional[str] = None) -> Optional[dict]:
    """A trial that failed without writing its own record — its process died with no retry left (a lost Ray worker),
    or it could not start (a Ψ trial whose pilots failed): recorded as failed, with `reason` and any backend error
    text kept in the trial folder (`worker_error.txt`), so the study, its tables and its exit code say so and a rerun
    retries it. Returns the record; the existing one if the trial wrote its own; None if a
    live process still holds the trial (it will write its own record)."""
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with try_lock(out / ".lock") as held:
        if not held:
            return None
        done = read_record(out)
        if done is not None:
            return done
        error = reason
        if details:
            (out / "worker_error.txt").write_text(details)
            error += f" (details: {out / 'worker_error.txt'})"
        return _close(out, {**_base(spec), "status": "failed", "error": error[:2000], "wall_s": None})
