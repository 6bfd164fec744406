"""Per-image quality metrics. PSNR, SSIM and NRMSE in a stated HU window (scikit-image) — float images in [0, 1], or
8-bit ones (paper 1's full range: ×255 cast to uint8, data range 255); RMSE in HU.

Pure math: no Ray, MLflow or SLURM.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from study.spec import CT_METRICS
from study.data.ct import window


def metric_images(pred_hu: np.ndarray, ref_hu: np.ndarray, low: float, high: float,
                  bits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The two images the full-reference metrics compare: HU → [0, 1] inside [low, high], clipped; with `bits=8`
    then ×255 and cast to uint8 (truncated, as paper 1's `astype(np.uint8)`). Paper 1 also repeats them to 3
    channels: every metric here is a mean over identical channels, so one channel gives the same values."""
    p, r = window(pred_hu, low, high), window(ref_hu, low, high)
    if bits == 8:
        return (p * 255).astype(np.uint8), (r * 255).astype(np.uint8)
    return p, r


def image_metrics(pred_hu: np.ndarray, ref_hu: np.ndarray, low: float, high: float,
                  bits: int | None = None) -> dict[str, float]:
    """PSNR (dB) and SSIM of the windowed images (data range 1; 255 for 8-bit ones), RMSE in HU over the whole
    slice."""
    p, r = metric_images(pred_hu, ref_hu, low, high, bits)
    data_range = 255.0 if bits == 8 else 1.0
    diff = np.asarray(pred_hu, np.float64) - np.asarray(ref_hu, np.float64)
    mse_w = float(np.mean((p.astype(np.float64) - r) ** 2))
    psnr = float("inf") if mse_w == 0 else float(peak_signal_noise_ratio(r, p, data_range=data_range))
    return {
        "psnr": psnr,
        "ssim": float(structural_similarity(r, p, data_range=data_range)),
        "rmse_hu": float(np.sqrt(np.mean(diff**2))),
    }


def nrmse(p: np.ndarray, r: np.ndarray) -> float:
    """scikit-image's NRMSE of the metric images (normalisation 'euclidean': ‖r − p‖ / ‖r‖); NaN where the
    reference is all zero in the window."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = float(normalized_root_mse(r, p))
    return v if np.isfinite(v) else float("nan")


#: every per-image metric a study can ask for (`metrics:` / `training.val_metrics:` in the spec), higher-is-better
QUALITY_METRICS = {"psnr": True, "ssim": True, "rmse_hu": False, "nrmse": False, "ms_ssim": True, "vif": True,
                   "gmsd": False, "noise_std": False, "cnr": True, "edge_width": False}


def quality_metrics(pred_hu: np.ndarray, ref_hu: np.ndarray, low: float, high: float, names=("psnr", "ssim", "rmse_hu"),
                    labels: np.ndarray | None = None, body: dict | None = None, pixel_mm: float = 1.0,
                    bits: int | None = None) -> dict[str, float]:
    """`names` of QUALITY_METRICS for one image: full-reference ones on the windowed images (nrmse; ms_ssim, vif,
    gmsd from study.metrics.quality, on 8-bit images as their grey levels / 255) and the CT-specific ones on the HU
    image when its phantom geometry is known (else left out)."""
    from study.metrics import quality

    out = image_metrics(pred_hu, ref_hu, low, high, bits)
    p, r = metric_images(pred_hu, ref_hu, low, high, bits)
    if "nrmse" in names:
        out["nrmse"] = nrmse(p, r)
    if bits == 8:
        p, r = p / 255.0, r / 255.0
    for name, fn in (("ms_ssim", quality.ms_ssim), ("vif", quality.vif), ("gmsd", quality.gmsd)):
        if name in names:
            out[name] = fn(p, r)
    if labels is not None and body is not None and any(n in names for n in CT_METRICS):
        ct = quality.ct_metrics(pred_hu, labels, body, pixel_mm)
        out.update({k: v for k, v in ct.items() if k in names})
    return out
