"""The per-image metrics a spec may name (`metrics:`, `training.val_metrics:`, `analysis.min_effect:`), the smallest
effect worth acting on for each, and their units. Torch-free; each metric's direction is in
`study.metrics.registry.QUALITY_METRICS`."""

from __future__ import annotations

from typing import Literal

METRICS = ("psnr", "ssim", "rmse_hu")  # the default test metrics
CT_METRICS = ("noise_std", "cnr", "edge_width")  # need the phantom's label map and body outline
#: learned full-reference metrics: their ImageNet backbones come from torchvision's cache (never downloaded)
LEARNED_METRICS = ("lpips_alex", "lpips_vgg", "dists")
#: no-reference metrics: NIQE with the standard pristine model, CT-NIQE with one fitted on the study's full-dose slices
NO_REFERENCE_METRICS = ("niqe", "ct_niqe")
MetricName = Literal["psnr", "ssim", "rmse_hu", "nrmse", "ms_ssim", "vif", "gmsd", "noise_std", "cnr",
                     "edge_width", "lpips_alex", "lpips_vgg", "dists", "niqe", "ct_niqe"]

#: the smallest difference worth acting on per metric, in its unit (`analysis.min_effect` overrides per metric)
#: nrmse: NRMSE ∝ RMSE on a given image, so PSNR's 0.1 dB is a 1.15 % change of it; 0.001 is that at NRMSE ≈ 0.09,
#: between what denoised phantom slices give in the full 8-bit range (≈ 0.06) and in the abdomen window (≈ 0.2).
#: lpips_*, dists: 0.01 / 0.005 are about a tenth of the spread between low-dose and full-dose slices in our checks;
#: niqe, ct_niqe: 0.1 on scores of about 3–10. These are conventions for a first study; set your own per metric.
MIN_EFFECT = {"psnr": 0.1, "ssim": 0.002, "rmse_hu": 1.0, "nrmse": 0.001, "ms_ssim": 0.002, "vif": 0.005,
              "gmsd": 0.002, "noise_std": 1.0, "cnr": 0.05, "edge_width": 0.05, "lpips_alex": 0.01,
              "lpips_vgg": 0.01, "dists": 0.005, "niqe": 0.1, "ct_niqe": 0.1}
#: each metric's unit as reports print it ("" = unitless)
METRIC_UNITS = {"psnr": "dB", "ssim": "", "rmse_hu": "HU", "nrmse": "", "ms_ssim": "", "vif": "", "gmsd": "",
                "noise_std": "HU", "cnr": "", "edge_width": "mm", "lpips_alex": "", "lpips_vgg": "", "dists": "",
                "niqe": "", "ct_niqe": ""}
