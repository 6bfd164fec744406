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


# -- regions of the phantom's label map (study.data.phantoms: 1 = liver parenchyma, 2 + k = lesion k) ----------------

def _disk(r: int) -> np.ndarray:
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def lesion_rois(labels: np.ndarray, ring: tuple[int, int] = (2, 5)) -> list[tuple[np.ndarray, np.ndarray]]:
    """(lesion, background) masks per lesion: the lesion's pixels, and a ring `ring` pixels around it inside the
    liver parenchyma (away from every lesion). Lesions with < 3 pixels or rings with < 10 are left out."""
    labels = np.asarray(labels)
    liver = labels == 1
    any_lesion = ndimage.binary_dilation(labels >= 2, _disk(ring[0]))
    rois = []
    for k in np.unique(labels[labels >= 2]):
        lesion = labels == k
        bg = ndimage.binary_dilation(lesion, _disk(ring[1])) & liver & ~any_lesion
        if lesion.sum() >= 3 and bg.sum() >= 10:
            rois.append((lesion, bg))
    return rois


def uniform_roi(labels: np.ndarray, margin: int = 2) -> np.ndarray:
    """The liver parenchyma eroded by `margin` pixels, away (margin + 1 pixels) from every lesion."""
    labels = np.asarray(labels)
    liver = ndimage.binary_erosion(labels == 1, _disk(margin))
    return liver & ~ndimage.binary_dilation(labels >= 2, _disk(margin + 1))


def edge_profile(image_hu: np.ndarray, body: dict, inner: float = 3.0, outer: float = 3.0, step: float = 0.25,
                 n_angles: int = 64) -> np.ndarray:
    """Mean profile across the body outline (air → subcutaneous fat), sampled along `n_angles` rays from the body
    centre from `outer` pixels outside to `inner` pixels inside the ellipse; noise averages out over the rays."""
    t = np.linspace(0, 2 * np.pi, n_angles, endpoint=False)
    d = np.arange(-inner, outer + step / 2, step)  # signed distance from the outline, outwards positive
    # the ellipse's radius along each ray, then points at radius r(θ) + d
    r = 1.0 / np.sqrt((np.cos(t) / body["rx"]) ** 2 + (np.sin(t) / body["ry"]) ** 2)
    rad = r[:, None] + d[None, :]
    ys, xs = body["cy"] + rad * np.sin(t)[:, None], body["cx"] + rad * np.cos(t)[:, None]
    samples = ndimage.map_coordinates(np.asarray(image_hu, np.float64), [ys.ravel(), xs.ravel()], order=1,
                                      mode="nearest").reshape(rad.shape)
    return samples.mean(axis=0)[::-1]  # from outside (air) to inside (fat)


def ct_metrics(image_hu: np.ndarray, labels: np.ndarray, body: dict, pixel_mm: float) -> dict[str, float]:
    """noise_std (HU, liver ROI), cnr (mean over the lesions), edge_width (mm, 10–90 % across the body outline)."""
    scale = max(1.0, labels.shape[0] / 128)  # the fat layer is ≥ ~4 px thick at 128²: stay inside it
    rois = lesion_rois(labels)
    roi = uniform_roi(labels)
    return {"noise_std": noise_std(image_hu, roi) if roi.sum() >= 10 else float("nan"),
            "cnr": float(np.mean([cnr(image_hu, a, b) for a, b in rois])) if rois else float("nan"),
            "edge_width": edge_width(edge_profile(image_hu, body, 3 * scale, 3 * scale), 0.25) * pixel_mm}
