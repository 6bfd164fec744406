"""The per-image metrics a spec may name (`metrics:`, `training.val_metrics:`, `analysis.min_effect:`) and the one
table of what is known about each (`METRIC_INFO`: label, unit, direction, smallest effect). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METRICS = ("psnr", "ssim", "rmse_hu")  # the default test metrics
CT_METRICS = ("noise_std", "cnr", "edge_width")  # need the phantom's label map and body outline
#: learned full-reference metrics: their ImageNet backbones come from torchvision's cache (never downloaded)
LEARNED_METRICS = ("lpips_alex", "lpips_vgg", "dists")
#: no-reference metrics: NIQE with the standard pristine model, CT-NIQE with one fitted on the study's full-dose slices
NO_REFERENCE_METRICS = ("niqe", "ct_niqe")
MetricName = Literal["psnr", "ssim", "rmse_hu", "nrmse", "ms_ssim", "vif", "gmsd", "noise_std", "cnr",
                     "edge_width", "lpips_alex", "lpips_vgg", "dists", "niqe", "ct_niqe"]


@dataclass(frozen=True)
class MetricInfo:
    """Everything the tool knows about a metric, in one record: its column name, the name readers see, its unit
    ("" = unitless), its direction and the smallest difference worth acting on (in its unit; `analysis.min_effect`
    overrides it per study)."""

    name: str
    label: str
    unit: str
    higher_is_better: bool
    min_effect: float


#: nrmse: NRMSE ∝ RMSE on a given image, so PSNR's 0.1 dB is a 1.15 % change of it; 0.001 is that at NRMSE ≈ 0.09,
#: between what denoised phantom slices give in the full 8-bit range (≈ 0.06) and in the abdomen window (≈ 0.2).
#: lpips_*, dists: 0.01 / 0.005 are about a tenth of the spread between low-dose and full-dose slices in our checks;
#: niqe, ct_niqe: 0.1 on scores of about 3–10. These are conventions for a first study; set your own per metric.
METRIC_INFO = {m.name: m for m in (
    MetricInfo("psnr", "PSNR", "dB", True, 0.1), MetricInfo("ssim", "SSIM", "", True, 0.002),
    MetricInfo("rmse_hu", "RMSE", "HU", False, 1.0), MetricInfo("nrmse", "NRMSE", "", False, 0.001),
    MetricInfo("ms_ssim", "MS-SSIM", "", True, 0.002), MetricInfo("vif", "VIF", "", True, 0.005),
    MetricInfo("gmsd", "GMSD", "", False, 0.002), MetricInfo("noise_std", "noise SD", "HU", False, 1.0),
    MetricInfo("cnr", "CNR", "", True, 0.05), MetricInfo("edge_width", "edge width", "mm", False, 0.05),
    MetricInfo("lpips_alex", "LPIPS (AlexNet)", "", False, 0.01), MetricInfo("lpips_vgg", "LPIPS (VGG)", "", False, 0.01),
    MetricInfo("dists", "DISTS", "", False, 0.005), MetricInfo("niqe", "NIQE", "", False, 0.1),
    MetricInfo("ct_niqe", "CT-NIQE", "", False, 0.1))}
#: views of METRIC_INFO by fact (kept for the spec's field texts and the callers that want one fact)
MIN_EFFECT = {k: m.min_effect for k, m in METRIC_INFO.items()}
METRIC_UNITS = {k: m.unit for k, m in METRIC_INFO.items()}
HIGHER_IS_BETTER = {k: m.higher_is_better for k, m in METRIC_INFO.items()}
