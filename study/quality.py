"""More image-quality metrics for the loss-function study (pure math: numpy, scipy, torchmetrics; no Ray/MLflow).

Full-reference, on windowed images in [0, 1]: MS-SSIM and VIF (torchmetrics; VIF is the pixel-domain VIF-p),
GMSD (Xue et al. 2014; written here: scikit-image and torchmetrics have none — checked against piq in the tests).
CT-specific, on HU images with masks: noise standard deviation in a uniform region, contrast-to-noise ratio of a
lesion against its background, and the 10–90 % width of an edge profile (a sharpness measure; blur widens it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_PREWITT = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0


def _tensor(a: np.ndarray):
    import torch

    return torch.as_tensor(np.asarray(a, np.float32))[None, None]


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_betas(side: int) -> tuple[float, ...]:
    """The standard MS-SSIM scale weights, cut to the scales an image of `side` pixels allows (torchmetrics needs
    side // (scales − 1)² > 10 for its 11-pixel window) and renormalised to sum to 1."""
    scales = max(s for s in range(1, 6) if side // max(1, s - 1) ** 2 > 10 and side >= 2**s) if side > 10 else 1
    w = np.array(MS_SSIM_WEIGHTS[:scales])
    return tuple((w / w.sum()).tolist())


def ms_ssim(pred: np.ndarray, ref: np.ndarray) -> float:
    """MS-SSIM (data range 1) over as many of the 5 standard scales as the image allows, weights renormalised."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as f

    return float(f(_tensor(pred), _tensor(ref), data_range=1.0, betas=ms_ssim_betas(min(np.shape(ref))),
                   normalize="relu"))


def vif(pred: np.ndarray, ref: np.ndarray) -> float:
    """Visual information fidelity (pixel domain, torchmetrics) of images in [0, 1], computed on the 8-bit scale
    the method's fixed visual-noise variance (σ²_n = 2) assumes: 1 at identity, lower with noise or blur."""
    from torchmetrics.functional.image import visual_information_fidelity as f

    return float(f(_tensor(np.asarray(pred) * 255.0), _tensor(np.asarray(ref) * 255.0)))


def gmsd(pred: np.ndarray, ref: np.ndarray, c: float = 170 / 255.0**2) -> float:
    """Gradient magnitude similarity deviation: 2×2 average-pool, Prewitt gradient magnitudes m_r, m_p,
    GMS = (2 m_r m_p + c) / (m_r² + m_p² + c), GMSD = its standard deviation (0 at identity, higher is worse)."""
    def pooled(a):
        a = np.asarray(a, np.float64)
        h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
        return a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    def magnitude(a):
        gx = ndimage.correlate(a, _PREWITT, mode="constant")
        gy = ndimage.correlate(a, _PREWITT.T, mode="constant")
        return np.sqrt(gx**2 + gy**2)

    mr, mp = magnitude(pooled(ref)), magnitude(pooled(pred))
    gms = (2 * mr * mp + c) / (mr**2 + mp**2 + c)
    return float(gms.std())


def noise_std(image_hu: np.ndarray, region: np.ndarray) -> float:
    """Standard deviation (HU) inside a uniform region (boolean mask)."""
    return float(np.asarray(image_hu, np.float64)[region].std(ddof=1))


def cnr(image_hu: np.ndarray, lesion: np.ndarray, background: np.ndarray) -> float:
    """Contrast-to-noise ratio |mean(lesion) − mean(background)| / std(background)."""
    x = np.asarray(image_hu, np.float64)
    return float(abs(x[lesion].mean() - x[background].mean()) / x[background].std(ddof=1))


def edge_width(profile: np.ndarray, spacing: float = 1.0) -> float:
    """10–90 % rise distance of a monotone edge profile (either direction), linearly interpolated, in units of
    `spacing`. For a step blurred by a Gaussian of σ it is 2·1.2816·σ ≈ 2.563·σ."""
    p = np.asarray(profile, np.float64)
    if p[-1] < p[0]:
        p = p[::-1]
    lo, hi = p[0], p[-1]
    if hi <= lo:
        return float("nan")
    q = (p - lo) / (hi - lo)
    q = np.maximum.accumulate(q)  # monotone for interpolation (noise-free profiles already are)
    x = np.arange(len(q)) * spacing
    return float(np.interp(0.9, q, x) - np.interp(0.1, q, x))
