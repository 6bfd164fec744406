"""Per-image quality metrics. PSNR, SSIM and NRMSE in a stated HU window (scikit-image) — float images in [0, 1], or
8-bit ones (paper 1's full range: ×255 cast to uint8, data range 255); RMSE in HU.

Pure math: no Ray, MLflow or SLURM.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from study.spec import CT_METRICS, LEARNED_METRICS, NO_REFERENCE_METRICS
from study.spec.metric_names import HIGHER_IS_BETTER
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


#: every per-image metric a study can ask for (`metrics:` / `training.val_metrics:` in the spec) → higher-is-better,
#: from the one metric table (study.spec.metric_names.METRIC_INFO)
QUALITY_METRICS = HIGHER_IS_BETTER


def quality_metrics(pred_hu: np.ndarray, ref_hu: np.ndarray, low: float, high: float, names=("psnr", "ssim", "rmse_hu"),
                    labels: np.ndarray | None = None, body: dict | None = None, pixel_mm: float = 1.0,
                    bits: int | None = None, ct_niqe_model=None, device="cpu") -> dict[str, float]:
    """`names` of QUALITY_METRICS for one image: full-reference ones on the windowed images (nrmse; ms_ssim, vif,
    gmsd from study.metrics.quality; lpips_*, dists from study.metrics.learned — 8-bit images as their grey levels
    / 255), the no-reference ones on the windowed output alone (niqe; ct_niqe with `ct_niqe_model`, else left out),
    and the CT-specific ones on the HU image when its phantom geometry is known (else left out). A learned metric
    whose backbone is missing raises StudyError: the trial leaves such metrics out first (`usable_metrics`)."""
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
    out.update(_learned_and_blind(p, r, names, ct_niqe_model, device))
    if labels is not None and body is not None and any(n in names for n in CT_METRICS):
        ct = quality.ct_metrics(pred_hu, labels, body, pixel_mm)
        out.update({k: v for k, v in ct.items() if k in names})
    return out


def _learned_and_blind(p: np.ndarray, r: np.ndarray, names, ct_niqe_model, device) -> dict[str, float]:
    out = {}
    if any(n in LEARNED_METRICS for n in names):
        from study.metrics.learned import LearnedMetric

        out.update({n: LearnedMetric(n, device)(p, r) for n in names if n in LEARNED_METRICS})
    if "niqe" in names or ("ct_niqe" in names and ct_niqe_model is not None):
        from study.metrics import no_reference

        if "niqe" in names:
            out["niqe"] = no_reference.niqe(p)
        if "ct_niqe" in names and ct_niqe_model is not None:
            out["ct_niqe"] = no_reference.ct_niqe(p, ct_niqe_model)
    return out


def usable_metrics(names) -> tuple[list[str], dict[str, str]]:
    """(the `names` that can be computed here, {name: why not} for the others): a learned metric whose ImageNet
    backbone is not in torchvision's cache is left out with the one-line reason, never downloaded."""
    skipped = {}
    if any(n in LEARNED_METRICS for n in names):
        from study.metrics.learned import missing_backbone

        skipped = {n: why.removeprefix(f"{n}: ") for n in names if n in LEARNED_METRICS and (why := missing_backbone(n))}
    return [n for n in names if n not in skipped], skipped
