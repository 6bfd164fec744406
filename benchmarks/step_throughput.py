"""Benchmark 1: training-step throughput (patches/s) of a trial inside Ray vs the same model and loss in a bare
PyTorch loop, one process each, on this machine's CPU (or GPU when there is one).

- bare: a plain loop over `unit_batch` → U-Net → MSE + λ·VGG feature MSE → Adam (what a user would write);
- trainer: `study.trial.train.run_trial` in this process (its `patches_per_s` counts the training steps only);
- ray: the same trial spec run by the Ray backend (a local Ray, one trial) and read back from its history.
Run: python benchmarks/step_throughput.py [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from rich.console import Console

from results_md import command, table, write_section
from study.spec import parse_spec
from study.planning.plan import plan, trial_spec
from study.running.prepare import prepare

SPEC = {"name": "bench-steps", "backend": "local",
        "data": {"source": "phantom", "size": 128, "n_train": 8, "n_val": 2, "n_test": 2, "real_slices": False},
        "model": {"name": "unet", "channels": 8, "levels": 4},
        "training": {"epochs": 1, "steps_per_epoch": 60, "batch_size": 8, "patch_size": 32, "lr": 1e-4,
                     "threads": 1, "val_slices": 2},
        "factors": {"feature_level": ["block3_conv2"], "pretraining": ["random"], "lam": [0.1], "seed": [0]},
        "tracking": {"enabled": False, "example_images": 0}}


def bare_loop(ts, steps: int) -> float:
    """patches/s of a minimal loop with the trial's model, loss and batches (no metrics, no checkpoint)."""
    from study.losses.terms import mse_loss, perceptual_loss
    from study.models import build_model
    from study.trial.batches import unit_batch
    from study.trial.loop import load_encoder

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = Path(ts.data_path)
    ld, fd = np.load(data / "train_ld.npy", mmap_mode="r"), np.load(data / "train_fd.npy", mmap_mode="r")
    model = build_model(ts.model)
    enc = load_encoder(ts, torch.device("cpu"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    tr = ts.training
    t = time.perf_counter()
    for _ in range(steps):
        x, y = unit_batch(ld, fd, tr.batch_size, tr.patch_size, ts.hu_range, rng)
        out = model(x)
        loss = mse_loss(out, y) + ts.lam * perceptual_loss(enc, out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    loss.item()
    return steps * tr.batch_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-steps-"))
    raw = {**SPEC, "output": str(root / "out"), "training": {**SPEC["training"], "steps_per_epoch": args.steps}}
    spec = parse_spec(raw)
    p = plan(spec)
    data, encoders = prepare(p, Console(quiet=True))
    base = trial_spec(p, p.trials[-1], data, encoders)
    assert base.lam == 0.1

    from study.backends import Events, Options
    from study.backends import ray as ray_backend
    from study.trial.train import run_trial

    bare_loop(base, 10)  # warm-up
    results = {"bare": [], "trainer": [], "ray": []}
    for r in range(args.repeats):
        results["bare"].append(bare_loop(base, args.steps))
        ts = replace(base, out_dir=str(root / f"trainer-{r}"))
        results["trainer"].append(run_trial(ts).history[0]["patches_per_s"])
        ts = replace(base, out_dir=str(root / f"ray-{r}"))
        got = {}
        ray_backend.run([ts], Events(on_epoch=lambda k, e, m: got.update(m)),
                        Options(cpu=1, max_concurrent=1, storage=str(root / "ray")))
        import json

        results["ray"].append(json.loads((Path(ts.out_dir) / "history.json").read_text())[0]["patches_per_s"])
    med = {k: statistics.median(v) for k, v in results.items()}
    rows = [{"loop": k, "patches/s (median)": med[k], "runs": ", ".join(f"{v:.1f}" for v in results[k]),
             "ratio to bare": med[k] / med["bare"]} for k in ("bare", "trainer", "ray")]
    body = (f"U-Net width 8 × 4 levels, 32² patches, batch 8, λ = 0.1 at block3_conv2 (random VGG-19), 1 thread, "
            f"{args.steps} steps × {args.repeats} repeats.\n\n{table(rows)}\n\n"
            f"**Inside Ray / bare loop = {med['ray'] / med['bare']:.3f}** (target ≥ 0.9); "
            f"trainer in-process / bare = {med['trainer'] / med['bare']:.3f}.")
    write_section("1. Step throughput: Ray trial vs bare PyTorch loop", command(), body)


if __name__ == "__main__":
    main()
