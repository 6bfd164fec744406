"""One trial: fit a denoiser with L = L_pixel + λ·L_perceptual on random patches, keep the best-validation
weights, test on full slices. A pure function of its `TrialSpec`; no Ray, MLflow or SLURM imports.

A checkpoint is written to `spec.out_dir/checkpoint.pt` after every epoch and picked up again if the trial is
restarted, so a killed or preempted trial continues from its last finished epoch. The selected weights alone go to
`model.pt` (`study.trial.model_file`) before testing; the checkpoint is removed once the record is written
(`study.trial.execute`), unless `training.keep_checkpoint`.

The pieces: `study.trial.loop` (set-up, one step, one epoch, the hold-Ψ window), `study.trial.evaluate` (the
epoch's report, validation, test metrics, examples, summary), `study.trial.checkpoint` (save and resume).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from study.trial.batches import device_split, init_output, load_splits, unit_batch
from study.trial.checkpoint import save_checkpoint
from study.trial.examples import Examples
from study.trial.evaluate import (EPOCH_METRICS, epoch_metrics, is_epoch_metric, means_over_tests, measure_tests,
                                  measures, summarise)
from study.trial.loop import Diverged, RunState, Trainer, setup, start, train_epoch
from study.trial.model_file import save_model
from study.trial.spec import TrialSpec

__all__ = ["EPOCH_METRICS", "Diverged", "TrialResult", "TrialSpec", "device_split", "init_output", "is_epoch_metric",
           "run_trial", "unit_batch"]


@dataclass
class TrialResult:
    summary: dict
    per_image: list[dict]
    history: list[dict]
    examples: Examples = field(default_factory=Examples)  # the example slices (study.trial.examples)


def keep_best(t: Trainer, run: RunState, metrics: dict) -> None:
    """The selected weights: the best validation PSNR so far (or the last epoch, with training.select: last)."""
    if t.spec.training.select == "last" or metrics["val_psnr"] > run.best_score:
        run.best_score = metrics["val_psnr"]
        run.best = {"epoch": run.epoch, "model": copy.deepcopy(t.model.state_dict())}


def run_trial(spec: TrialSpec, on_epoch: Optional[Callable[[int, dict], None]] = None) -> TrialResult:
    """Train, select and test one configuration. `on_epoch(epoch, metrics)` is called after every epoch."""
    t0 = time.time()
    splits = load_splits(spec.data_path, spec.training.val_slices)
    t = setup(spec, splits)
    out_dir = Path(spec.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t.measures = measures(spec, t.device)
    run = start(t, out_dir / "checkpoint.pt")
    for epoch in range(run.start, spec.training.epochs):
        run.epoch = epoch
        raw, weighted, critic_sum, train_s = train_epoch(t, run)
        metrics = epoch_metrics(t, run, splits, raw, weighted, critic_sum, train_s)
        run.history.append(metrics)
        keep_best(t, run, metrics)
        save_checkpoint(out_dir / "checkpoint.pt", t, run)
        if on_epoch:
            on_epoch(epoch, metrics)

    t.model.load_state_dict(run.best["model"])
    save_model(out_dir, spec, run.best)
    per_image, examples = measure_tests(t.model, spec, splits, t.device, t.measures)
    summary = summarise(run, means_over_tests(per_image, splits.test_sets), t.names, t.device, time.time() - t0)
    if t.measures.skipped:  # named in the record, so the report can say why a metric is absent
        summary["skipped_metrics"] = json.dumps(t.measures.skipped)
    return TrialResult(summary=summary, per_image=per_image, history=run.history, examples=examples)
