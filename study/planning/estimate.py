"""What a plan will cost before it runs: trial-hours and disk, for `study run --dry-run`.

Time: where the results folder holds finished trials, their measured `wall_s` (median per configuration, else over
all); otherwise a CPU timing of 2 optimiser steps of the denoiser (after one warm-up step, pixel loss only) at the
spec's patch and batch size × steps per epoch × epochs — a rough upper bound for GPU runs.
Disk: a finished trial keeps `model.pt` (the selected weights, float32: 4 bytes × parameters), per_image.parquet,
history.json, result.json and examples.png; with `training.keep_checkpoint` also checkpoint.pt (model, Adam's two
moments and a copy of the best model: 4 × 4 bytes × parameters, + the critic and its optimiser for adversarial
losses). Measured folder sizes replace the small files' estimate where trials have finished. Plus the data cache and
the encoders the study pretrains, where they are not made yet.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console

FLOAT = 4  # bytes per float32 parameter
MODEL_FILE_EXTRA = 8_000  # model.pt besides its tensors: the pickle, the model spec, ids
VGG19_FEATURES = 20_024_384  # parameters of a VGG-19 `features` (an encoder the study makes is saved as these)
EXAMPLE_PNG = 100_000  # examples.png per example image (a 720×240 px row at dpi 80)
EXAMPLE_NPZ = 3 * 2  # examples.npz bytes per pixel of an example slice: low, output, reference as int16 (an upper
# bound: compressed, the smoke study's came to 0.55 of it)
SLICE_PX = 512  # side of a CT slice where the data do not say (DICOM sources)
STEP_BUDGET_S = 10.0  # a warm-up step slower than this is the timing (no further steps are timed)
MAX_MEASURED = 500  # finished trial folders whose size is measured (evenly spread)


@dataclass
class Estimate:
    n_trials: int  # to run: not finished
    seconds: Optional[float]  # trial-seconds of those (None: unknown)
    time_note: str
    disk: int  # bytes the run adds: trial folders, data cache and encoders not made yet
    disk_note: str


def print_estimate(p, console: Console, states: Optional[dict] = None) -> Estimate:
    est = estimate(p, states)
    if est.n_trials == 0:
        console.print(f"estimate: nothing to run (all {len(p.trials)} trials finished)", highlight=False)
        return est
    lower = "measured" not in est.time_note  # timed training steps alone: no encoder, validation or test
    hours = (", trial-hours unknown" if est.seconds is None
             else f" {'≥' if lower else '≈'} {_hours(est.seconds)} trial-hours{' (a lower bound)' if lower else ''}")
    console.print(f"estimate: {est.n_trials} trials{hours} ({est.time_note}), disk ≈ {est.disk / 1e9:.3g} GB "
                  f"({est.disk_note})", highlight=False, soft_wrap=True)
    return est


def estimate(p, states: Optional[dict] = None) -> Estimate:
    """Trial-hours and disk of the trials of plan `p` that have not finished."""
    states = states if states is not None else p.states()
    todo = [t for t in p.trials if states[t.run_key] != "finished"]
    finished = [t for t in p.trials if states[t.run_key] == "finished"]
    params, critic = parameter_counts(p.spec)
    walls, sizes = measured(p, finished, params)
    seconds, time_note = _time(p, todo, walls)
    disk, disk_note = _disk(p, todo, sizes, params, critic)
    return Estimate(len(todo), seconds, time_note, disk, disk_note)


def parameter_counts(spec) -> tuple[int, int]:
    """(denoiser parameters, parameters of the largest critic an adversarial loss of the grid uses, else 0); the
    networks are built, no weights needed."""
    from study.losses.adversarial import Critic
    from study.models import build_model

    params = sum(t.numel() for t in build_model(spec.model).parameters())
    widths = {spec.loss(name).critic.width for name in spec.factors.loss if spec.loss(name).adversarial > 0}
    critic = max((sum(t.numel() for t in Critic(w).parameters()) for w in widths), default=0)
    return params, critic


def measured(p, finished: list, params: int) -> tuple[dict[str, list[float]], list[int]]:
    """From the finished trials: wall_s per configuration, and the folder size of each (at most MAX_MEASURED) as a
    finished trial keeps it now: checkpoint.pt only with keep_checkpoint, and model.pt (or, with keep_checkpoint,
    checkpoint.pt) counted at its computed size where a trial that finished under older rules has none."""
    from study.store.results import read_record, trial_dir

    walls: dict[str, list[float]] = {}
    for t in finished:
        wall = (read_record(trial_dir(p.out, t.run_key)) or {}).get("wall_s")
        if wall is not None:
            walls.setdefault(t.configuration, []).append(float(wall))
    keep = bool(getattr(p.spec.training, "keep_checkpoint", False))
    step = max(1, len(finished) // MAX_MEASURED)
    sizes = [_kept_size(trial_dir(p.out, t.run_key), keep, params) for t in finished[::step]]
    return walls, sizes


def _kept_size(folder: Path, keep_checkpoint: bool, params: int) -> int:
    files = {f.name: f.stat().st_size for f in Path(folder).iterdir() if f.is_file()}
    if keep_checkpoint:
        files.setdefault("checkpoint.pt", 4 * FLOAT * params)  # a trial that finished before it was kept
    else:
        files.pop("checkpoint.pt", None)  # deleted once model.pt is written
    files.setdefault("model.pt", FLOAT * params + MODEL_FILE_EXTRA)  # a trial that finished before model files
    return sum(files.values())


def _time(p, todo: list, walls: dict[str, list[float]]) -> tuple[Optional[float], str]:
    if walls:
        everything = [w for ws in walls.values() for w in ws]
        overall = statistics.median(everything)
        seconds = sum(statistics.median(walls[t.configuration]) if t.configuration in walls else overall
                      for t in todo)
        return seconds, (f"measured on {len(everything)} finished trials: median {_duration(overall)} per trial, "
                         f"per configuration where it has finished trials")
    from study.planning.plan import steps_per_epoch

    step_s, timed = step_seconds(p.spec)
    how = (f"estimated from a {timed}-step CPU timing of the denoiser without the perceptual term; GPU runs are "
           f"faster" if timed else f"one CPU step of the denoiser took {step_s:.1f} s, more than {STEP_BUDGET_S:g} s: "
           f"not timed further; GPU runs are faster")
    steps, where = steps_per_epoch(p)
    epochs = p.spec.training.epochs
    if steps is None:
        return None, (f"{step_s * epochs:.3g} s × steps per epoch per trial ({step_s:.2f} s per step × {epochs} "
                      f"epochs); steps per epoch {where}; {how}")
    per_trial = step_s * steps * epochs
    return per_trial * len(todo), (f"{_duration(per_trial)} per trial: {step_s:.3g} s per step × {steps} steps × "
                                   f"{epochs} epochs, training steps only, {how}")


def step_seconds(spec) -> tuple[float, int]:
    """(seconds per optimiser step of the denoiser on this CPU at the spec's batch and patch size, MSE only, with
    `training.threads` threads; steps timed after one warm-up step: 2, or 0 where the warm-up step took longer than
    STEP_BUDGET_S and is the estimate itself)."""
    import torch

    from study.models import build_model

    tr, threads = spec.training, torch.get_num_threads()
    torch.set_num_threads(tr.threads)
    try:
        gen = torch.Generator().manual_seed(0)
        model = build_model(spec.model)
        opt = torch.optim.Adam(model.parameters(), lr=tr.lr)
        x = torch.rand(tr.batch_size, 1, tr.patch_size, tr.patch_size, generator=gen)
        y = torch.rand(x.shape, generator=gen)

        def one() -> float:
            t0 = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            return time.perf_counter() - t0

        warm = one()
        return (warm, 0) if warm > STEP_BUDGET_S else ((one() + one()) / 2, 2)
    finally:
        torch.set_num_threads(threads)


def _disk(p, todo: list, sizes: list[int], params: int, critic: int) -> tuple[int, str]:
    spec = p.spec
    model = FLOAT * params + MODEL_FILE_EXTRA
    keep = bool(getattr(spec.training, "keep_checkpoint", False))
    adversarial = {name for name in spec.factors.loss if spec.loss(name).adversarial > 0}
    n_adv = sum(t.loss in adversarial for t in todo)
    checkpoints = (4 * FLOAT * params * len(todo) + 3 * FLOAT * critic * n_adv) if keep else 0
    if sizes:
        per_trial = statistics.median(sizes)
        trials = per_trial * len(todo)
        note = f"measured on {len(sizes)} finished trials: median {_mb(per_trial)} per trial"
    else:
        small = _small_files(spec)
        trials = (model + small) * len(todo) + checkpoints
        note = f"model.pt {_mb(model)} per trial + ≈ {_mb(small)} of tables and examples"
    if keep:
        note += f"; checkpoint.pt kept (training.keep_checkpoint): {_mb(4 * FLOAT * params)} per trial"
    data, data_note = data_bytes(p)
    enc = encoder_bytes(p)
    parts = [note, data_note] + ([f"encoders the study makes {_mb(enc)}"] if enc else [])
    total = int(trials + (data or 0) + enc)
    return total, "; ".join(parts) + _free(p.out, total)


def _small_files(spec) -> int:
    """result.json, history.json, events.log, examples.png, examples.npz and per_image.parquet of one trial (phantom
    test sets are counted; other sources' per_image.parquet grows with their test slices)."""
    d = spec.data
    images = d.n_test + 2 if d.source == "phantom" else 0
    per_image = 10_000 + images * 16 * (2 * len(spec.metrics) + 6)
    side = d.size if d.source == "phantom" else SLICE_PX
    examples = (EXAMPLE_PNG + EXAMPLE_NPZ * side * side) * spec.tracking.example_images
    return 6_000 + 1_000 * spec.training.epochs + examples + per_image


def data_bytes(p) -> tuple[Optional[int], str]:
    """Bytes the prepared data will take where known (0 where they are prepared already), and a note."""
    folder = p.out / "data" / f"data-{p.data_id}"
    if folder.is_dir():
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        return 0, f"data prepared already ({_mb(size)})"
    d = p.spec.data
    if d.source != "phantom":
        return None, "data cache not counted: its size is known once prepared (8 bytes per pixel of the slices used)"
    from study.data.sources import real_slice_paths

    real = len(real_slice_paths()) if d.real_slices else 0
    size = (d.n_train + d.n_val + d.n_test) * d.size ** 2 * 9 + real * d.size ** 2 * 8  # float32 pairs, uint8 labels
    return size, f"data cache {_mb(size)}"


def encoder_bytes(p) -> int:
    """Bytes of the encoders the study makes (random, rotnet, supervised) that are not in its cache yet."""
    from study.planning.plan import used_encoders

    made = [name for name in used_encoders(p.spec) if p.spec.encoder(name).source in ("random", "rotnet", "supervised")]
    missing = [n for n in made if not (p.out / "encoders" / f"{n}-{p.encoder_keys.get(n)}.pt").is_file()]
    return len(missing) * (FLOAT * VGG19_FEATURES + MODEL_FILE_EXTRA)


def _free(out: Path, need: int) -> str:
    """"; N GB free at <the results folder or its nearest existing parent>", and whether that is too little."""
    base = next((d for d in (Path(os.path.abspath(out)), *Path(os.path.abspath(out)).parents) if d.is_dir()), None)
    try:
        free = shutil.disk_usage(base).free if base else None
    except OSError:
        free = None
    if free is None:
        return ""
    return f"; {free / 1e9:.3g} GB free at {base}" + (": not enough" if need > free else "")


def _mb(n: float) -> str:
    return f"{n / 1e6:.3g} MB"


def _hours(seconds: float) -> str:
    h = seconds / 3600
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
