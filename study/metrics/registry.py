"""Per-image quality metrics. PSNR and SSIM in a stated HU display window (scikit-image); RMSE in HU.

Pure math: no Ray, MLflow or SLURM.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from study.spec import CT_METRICS
from study.data.ct import window


def image_metrics(pred_hu: np.ndarray, ref_hu: np.ndarray, low: float, high: float) -> dict[str, float]:
    """PSNR (dB) and SSIM of the windowed images (data range 1), RMSE in HU over the whole slice."""
    p, r = window(pred_hu, low, high), window(ref_hu, low, high)
    diff = np.asarray(pred_hu, np.float64) - np.asarray(ref_hu, np.float64)
    mse_w = float(np.mean((p - r) ** 2))
    psnr = float("inf") if mse_w == 0 else float(peak_signal_noise_ratio(r, p, data_range=1.0))
    return {
        "psnr": psnr,
        "ssim": float(structural_similarity(r, p, data_range=1.0)),
        "rmse_hu": float(np.sqrt(np.mean(diff**2))),
    }


#: every per-image metric a study can ask for (`metrics:` / `training.val_metrics:` in the spec), higher-is-better
QUALITY_METRICS = {"psnr": True, "ssim": True, "rmse_hu": False, "ms_ssim": True, "vif": True, "gmsd": False,
                   "noise_std": False, "cnr": True, "edge_width": False}


def quality_metrics(pred_hu: np.ndarray, ref_hu: np.ndarray, low: float, high: float, names=("psnr", "ssim", "rmse_hu"),
                    labels: np.ndarray | None = None, body: dict | None = None, pixel_mm: float = 1.0) -> dict[str, float]:
    """`names` of QUALITY_METRICS for one image: full-reference ones on the windowed images (ms_ssim, vif, gmsd,
    study.metrics.quality) and the CT-specific ones on the HU image when its phantom geometry is known (else left out)."""
    from study.metrics import quality

    out = image_metrics(pred_hu, ref_hu, low, high)
    p, r = window(pred_hu, low, high), window(ref_hu, low, high)
    for name, fn in (("ms_ssim", quality.ms_ssim), ("vif", quality.vif), ("gmsd", quality.gmsd)):
        if name in names:
            out[name] = fn(p, r)
    if labels is not None and body is not None and any(n in names for n in CT_METRICS):
        ct = quality.ct_metrics(pred_hu, labels, body, pixel_mm)
        out.update({k: v for k, v in ct.items() if k in names})
    return out
