"""What the loss-function study's quality metrics cost — per image and metric at 128², 256² and 512²
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import stage_backbone  # noqa: E402
from results_md import command, table, write_section  # noqa: E402

REPEATS = 5


CLASSIC = ("psnr", "ssim", "rmse_hu", "nrmse", "ms_ssim", "vif", "gmsd", "noise_std", "cnr", "edge_width")
PERCEPTION = (("niqe", ("niqe",)), ("ct_niqe", ("ct_niqe",)), ("lpips_alex", ("lpips_alex",)),
              ("lpips_vgg", ("lpips_vgg",)), ("dists", ("dists",)))


def stage_backbones(home: Path) -> None:
    """Seeded stand-ins for torchvision's AlexNet and VGG-16 ImageNet files in `home` (TORCH_HOME): the metrics' cost
    does not depend on the weights' values, and the real files cannot be downloaded here."""
    from torchvision.models import alexnet, vgg16

    for model, name in ((alexnet(), "alexnet-owt-7be5be79.pth"), (vgg16(), "vgg16-397923af.pth")):
        stage_backbone(home / "hub" / "checkpoints", model, name)


def _median_ms(fn) -> float:
    runs = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return 1000 * float(np.median(runs))


def per_metric(size: int) -> dict[str, float]:
    from study.data.phantoms import phantom_slice
    from study.data.ct import window
    from study.metrics.no_reference import ct_niqe_patch, fit_niqe_model
    from study.metrics.registry import quality_metrics

    img, labels, body = phantom_slice(1, size, geometry=True)
    noisy = img + np.random.default_rng(0).normal(0, 20, img.shape).astype(np.float32)
    kw = {"labels": labels, "body": body, "pixel_mm": 350 / size,
          "ct_niqe_model": fit_niqe_model([window(phantom_slice(i, size), -160, 240) for i in range(2, 8)],
                                          patch=ct_niqe_patch(size))}
    every = CLASSIC + tuple(n for _, names in PERCEPTION for n in names if n != "niqe" or size >= 192)
    quality_metrics(noisy, img, -160, 240, every, **kw)  # warm-up (imports, torch init, the networks built)
    times = {}
    for group, names in (("psnr+ssim+rmse_hu", ("psnr",)), ("ms_ssim", ("ms_ssim",)), ("vif", ("vif",)),
                         ("gmsd", ("gmsd",)), ("noise_std+cnr+edge_width", ("cnr",)), ("all 10 classic", CLASSIC),
                         *PERCEPTION):
        if group == "niqe" and size < 192:
            times[group] = float("nan")  # NIQE's 96-pixel patches need 192 pixels
            continue
        times[group] = _median_ms(lambda: quality_metrics(noisy, img, -160, 240, names, **kw))
    base = times["psnr+ssim+rmse_hu"]
    return {k: v if k in ("psnr+ssim+rmse_hu", "all 10 classic") else v - base for k, v in times.items()}


def main() -> None:
    import os
    import tempfile

    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["TORCH_HOME"] = home
        stage_backbones(Path(home))
        for size in (128, 256, 512):
            rows.append({"size": f"{size}²", **{f"{k} (ms)": v for k, v in per_metric(size).items()}})
    last = rows[-1]
    all_512 = last["all 10 classic (ms)"]
    body = (f"Median of {REPEATS} calls of `study.metrics.quality_metrics` on one phantom slice (noisy vs clean, 1 "
            f"thread, CPU); every row but the first and 'all 10 classic' is the time beyond PSNR + SSIM + RMSE, which "
            f"are always computed. LPIPS and DISTS ran on seeded stand-ins of torchvision's AlexNet/VGG-16 files (the "
            f"cost does not depend on the weights); CT-NIQE's model was fitted beforehand (once per data folder in a "
            f"study); NIQE needs slices of at least 192 pixels (NaN below).\n\n" + table(rows)
            + f"\n\nValidation with the ten classic metrics on paper-scale validation (64 slices of 512²) adds ≈ "
            f"{64 * all_512 / 1000:.1f} s per epoch at this rate; LPIPS-VGG adds ≈ "
            f"{64 * last['lpips_vgg (ms)'] / 1000:.0f} s and DISTS ≈ {64 * last['dists (ms)'] / 1000:.0f} s on one CPU "
            f"thread (a GPU is the place for them, or test time only); NIQE and CT-NIQE ≈ "
            f"{64 * (last['niqe (ms)'] + last['ct_niqe (ms)']) / 1000:.1f} s together. `training.val_metrics` defaults "
            f"to PSNR only.")
    write_section("Quality-metric cost (loss-function study)", command(), body)


if __name__ == "__main__":
    main()
