"""Per-image quality metrics. PSNR and SSIM in a stated HU display window (scikit-image); RMSE in HU.

Pure math: no Ray, MLflow or SLURM.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

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
