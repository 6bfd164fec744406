"""Benchmark 6: what the loss-function study's quality metrics cost — per image and metric at 128², 256² and 512²
(phantom slices with their geometry, a noisy copy against the clean one), and so the per-epoch validation cost of
`training.val_metrics` on paper-scale validation (64 slices of 512²). One thread, as a trial runs.
Run: python benchmarks/quality_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_md import command, table, write_section

REPEATS = 5


def per_metric(size: int) -> dict[str, float]:
    from study.data.phantoms import phantom_slice
    from study.metrics.registry import QUALITY_METRICS, quality_metrics

    img, labels, body = phantom_slice(1, size, geometry=True)
    noisy = img + np.random.default_rng(0).normal(0, 20, img.shape).astype(np.float32)
    geometry = {"labels": labels, "body": body, "pixel_mm": 350 / size}
    quality_metrics(noisy, img, -160, 240, tuple(QUALITY_METRICS), **geometry)  # warm-up (imports, torch init)
    times = {}
    for group, names in (("psnr+ssim+rmse_hu", ("psnr",)), ("ms_ssim", ("ms_ssim",)), ("vif", ("vif",)),
                         ("gmsd", ("gmsd",)), ("noise_std+cnr+edge_width", ("cnr",)), ("all 9", tuple(QUALITY_METRICS))):
        runs = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            quality_metrics(noisy, img, -160, 240, names, **geometry)
            runs.append(time.perf_counter() - t)
        times[group] = float(np.median(runs))
    base = times["psnr+ssim+rmse_hu"]
    return {k: (v if k == "psnr+ssim+rmse_hu" else (v - base if k != "all 9" else v)) for k, v in times.items()}


def main() -> None:
    import torch

    torch.set_num_threads(1)
    rows = []
    for size in (128, 256, 512):
        ms = {k: 1000 * v for k, v in per_metric(size).items()}
        rows.append({"size": f"{size}²", **{f"{k} (ms)": v for k, v in ms.items()}})
    all_512 = rows[-1]["all 9 (ms)"]
    body = (f"Median of {REPEATS} calls of `study.metrics.quality_metrics` on one phantom slice (noisy vs clean, 1 "
            f"thread); the extra metrics' rows are the time beyond PSNR + SSIM + RMSE, which are always computed.\n\n"
            + table(rows) + f"\n\nValidation with all nine metrics on paper-scale validation (64 slices of 512²) adds "
            f"≈ {64 * all_512 / 1000:.1f} s per epoch at this rate (one thread; the denoiser's forward pass not "
            f"included); `training.val_metrics` defaults to PSNR only, and the loss-function study's Mayo spec asks "
            f"for six.")
    write_section("Quality-metric cost (loss-function study)", command(), body)


if __name__ == "__main__":
    main()
