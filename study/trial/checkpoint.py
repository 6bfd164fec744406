"""The trial's checkpoint, `out_dir/checkpoint.pt`: written atomically after every epoch, read back when a killed or
preempted trial is restarted so it continues from its last finished epoch.

Its keys (a checkpoint written by an older version still resumes): `CHECKPOINT_KEYS`, always present, and `lam`,
`calibration`, `hold` (hold-Ψ state) and `critic` (WGAN-GP critic and its optimiser), None where unused.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import torch

from study.store.results import atomic_torch_save

CHECKPOINT_KEYS = ("model", "opt", "rng", "torch_rng", "epoch", "history", "best", "best_score")


def load_checkpoint(path: Path, device) -> Optional[dict]:
    """The trial's checkpoint (tensors and plain data only: `weights_only=True`), or None when there is none. A file
    that cannot be read as one (garbage, truncated, missing keys) is moved aside to `checkpoint.pt.corrupt-<time>`,
    named in a warning and in `events.log`, and the trial starts again from scratch instead of failing for ever."""
    if not path.is_file():
        return None
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
        if missing:
            raise ValueError(f"not a trial checkpoint (missing {', '.join(missing)})")
        return ck
    except Exception as err:  # noqa: BLE001 - whatever the file holds, it is not a checkpoint we can resume from
        _move_aside(path, err)
        return None


def _move_aside(path: Path, err: Exception) -> None:
    from study.store.events import log_event

    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(path, aside)
    reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    print(f"warning: {path} could not be read as a checkpoint ({reason}); moved to {aside.name}, training "
          f"this trial from the start", flush=True)
    log_event(path.parent, "checkpoint_corrupt", file=str(path), moved_to=aside.name, reason=reason)


def save_checkpoint(path: Path, t, run) -> None:
    """Everything needed to continue after `run.epoch`: the trainer `t` (model, optimiser, batch generator, critic)
    and the run's state (history, best weights, λ, its calibration and hold-Ψ state)."""
    atomic_torch_save({"model": t.model.state_dict(), "opt": t.opt.state_dict(), "rng": t.rng.bit_generator.state,
                       "torch_rng": torch.get_rng_state(), "epoch": run.epoch, "history": run.history,
                       "best": run.best, "best_score": run.best_score, "lam": run.lam,
                       "calibration": run.calibration, "hold": run.hold.state() if run.hold else None,
                       "critic": t.adv.state() if t.adv else None}, path)


def restore(t, ck: dict) -> None:
    """Put the trainer `t` back where checkpoint `ck` left it (weights, optimiser, both generators, critic)."""
    t.model.load_state_dict(ck["model"])
    t.opt.load_state_dict(ck["opt"])
    t.rng.bit_generator.state = ck["rng"]
    torch.set_rng_state(ck["torch_rng"])
    if t.adv is not None:
        t.adv.load(ck["critic"])
