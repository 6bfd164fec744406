"""NIQE (Mittal, Soundararajan & Bovik 2013, "Making a 'completely blind' image quality analyzer"), as the authors'
MATLAB release computes it; written here from the paper and that release's description (pure math: numpy, scipy).

The gray image on the 0–255 scale, cropped to whole patches; MSCN coefficients (I − μ)/(σ + 1) with a 7 × 7 Gaussian
window (σ = 7/6, borders replicated). Per patch 18 features: the shape α and mean scale (β_l + β_r)/2 of an
asymmetric generalised Gaussian (AGGD) fitted to the MSCN coefficients, and the AGGD shape α, mean
η = (β_r − β_l) Γ(2/α)/Γ(1/α) and scales β_l, β_r of the four neighbour products (horizontal, vertical, both
diagonals; circular within the patch); shapes by moment matching on the release's grid α ∈ 0.2:0.001:10. (The
paper's text names the MSCN fit a GGD with variance σ²; the release, and so its pristine model, uses the AGGD's mean
scale.) The same again on the image halved (MATLAB `imresize(·, 0.5)`: antialiased bicubic, a = −0.5, symmetric
borders) with half-size patches: 36 features per patch. A multivariate Gaussian (ν₂, Σ₂) fitted to the test
image's patches — all of them, less those whose features are not finite (flat patches, e.g. air), as the release's
nanmean/nancov leave them out — is compared with the pristine one (ν₁, Σ₁):
D = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂)/2)⁺ (ν₁ − ν₂)). Lower is better.

A pristine model is fitted (`fit_niqe_model`) as the release does: per image, only patches whose sharpness (mean
local deviation σ at full resolution) exceeds 0.75 × that image's sharpest patch. The standard model is the
release's (study.metrics.niqe_model).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Optional

import numpy as np
from scipy import linalg, ndimage
from scipy.special import gamma

Model = tuple[np.ndarray, np.ndarray]  # (mean ν, covariance Σ) of the 36 patch features

NIQE_PATCH = 96  # the standard model's patch size (the test image must be cut the same way)
SHARPNESS = 0.75  # the release's threshold: pristine patches kept when their sharpness > 0.75 × the image's max
MIN_PATCHES = 2  # a test image needs at least this many patches with finite features (a sample covariance)

_ALPHAS = 0.2 + 0.001 * np.arange(9801)  # the release's grid 0.2:0.001:10 for the AGGD shape
_RHO = gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))  # increasing in α
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # neighbour products: horizontal, vertical, diagonal, anti-diagonal
_CUBIC_HALF = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125,
                        -0.0234375]) / 2  # Keys cubic (a = −0.5) widened ×2 for antialiasing, sampled at ±0.5…3.5


_G = np.exp(-np.arange(-3, 4) ** 2 / (2 * (7 / 6) ** 2))
_G /= _G.sum()  # the normalised 7 × 7 Gaussian window (σ = 7/6) is the outer product of this with itself


def _smooth(a: np.ndarray) -> np.ndarray:
    return ndimage.correlate1d(ndimage.correlate1d(a, _G, axis=0, mode="nearest"), _G, axis=1, mode="nearest")


def mscn(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients (I − μ)/(σ + 1) of a 0–255 image, and the local deviation
    σ (Gaussian-weighted, 7 × 7, σ = 7/6, borders replicated)."""
    mu = _smooth(img)
    sigma = np.sqrt(np.abs(_smooth(img * img) - mu * mu))
    return (img - mu) / (sigma + 1.0), sigma


def halve(img: np.ndarray) -> np.ndarray:
    """MATLAB's `imresize(img, 0.5)`: bicubic (a = −0.5) with antialiasing, half-sample symmetric borders; output
    ceil(n/2) per side."""
    out = np.asarray(img, np.float64)
    for _ in range(2):  # rows, then (transposed) columns
        n, m = out.shape[0], (out.shape[0] + 1) // 2
        p = np.pad(out, ((3, 2 * m + 3 - n), (0, 0)), mode="symmetric")
        out = sum(w * p[k:k + 2 * m:2] for k, w in enumerate(_CUBIC_HALF)).T
    return out


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD fit of each row of `x` by moment matching: shape α (nearest on the release's grid), scales β_l, β_r."""
    sq = x * x
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.sqrt((sq * (x < 0)).sum(1) / (x < 0).sum(1))
        right = np.sqrt((sq * (x > 0)).sum(1) / (x > 0).sum(1))
        g = left / right
        r = np.abs(x).mean(1) ** 2 / sq.mean(1)
        r_norm = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    ok = np.isfinite(r_norm)
    i = np.clip(np.searchsorted(_RHO, np.where(ok, r_norm, 0.0)), 1, len(_RHO) - 1)
    i -= (r_norm - _RHO[i - 1]) ** 2 <= (_RHO[i] - r_norm) ** 2  # the nearer neighbour; ties to the lower α
    alpha = np.where(ok, _ALPHAS[i], np.nan)
    c = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * c, right * c


def _blocks(a: np.ndarray, p: int) -> np.ndarray:
    """Non-overlapping p × p blocks (row-major order) of an array whose sides are multiples of p: (n, p, p)."""
    r, c = a.shape[0] // p, a.shape[1] // p
    return a[:r * p, :c * p].reshape(r, p, c, p).swapaxes(1, 2).reshape(r * c, p, p)


def _patch_features(coef: np.ndarray, p: int) -> np.ndarray:
    """The 18 features of each p × p patch of MSCN coefficients: (n, 18)."""
    b = _blocks(coef, p)
    flat = b.reshape(len(b), -1)
    alpha, bl, br = _aggd(flat)
    cols = [alpha, (bl + br) / 2]
    for dy, dx in _SHIFTS:
        pair = (b * np.roll(b, (dy, dx), axis=(1, 2))).reshape(len(b), -1)
        alpha, bl, br = _aggd(pair)
        cols += [alpha, (br - bl) * gamma(2 / alpha) / gamma(1 / alpha), bl, br]
    return np.stack(cols, axis=1)


def niqe_features(img: np.ndarray, patch: int = NIQE_PATCH) -> tuple[np.ndarray, np.ndarray]:
    """The 36 NIQE features of each patch of a gray image in [0, 1] (scaled ×255; cropped to whole patches, row-major
    order), and each patch's sharpness (mean local deviation σ at full resolution): ((n, 36), (n,))."""
    if patch < 2 or patch % 2:
        raise ValueError(f"NIQE patch size must be even, got {patch}")
    img = np.asarray(img, np.float64)
    if img.ndim != 2:
        raise ValueError(f"NIQE needs a 2-D gray image, got shape {img.shape}")
    r, c = img.shape[0] // patch, img.shape[1] // patch
    if r == 0 or c == 0:
        return np.empty((0, 36)), np.empty(0)
    img = img[:r * patch, :c * patch] * 255.0
    coef, sigma = mscn(img)
    full = _patch_features(coef, patch)
    sharp = _blocks(sigma, patch).mean(axis=(1, 2))
    half = _patch_features(mscn(halve(img))[0], patch // 2)
    return np.hstack([full, half]), sharp


def _finite_rows(feats: np.ndarray) -> np.ndarray:
    return feats[np.isfinite(feats).all(axis=1)]


def niqe_distance(feats: np.ndarray, model: Model) -> float:
    """D = sqrt((ν₁ − ν₂)ᵀ ((Σ₁ + Σ₂)/2)⁺ (ν₁ − ν₂)) between the pristine model (ν₁, Σ₁) and the Gaussian fitted to
    the test patches' features (rows with non-finite values left out); NaN with fewer than MIN_PATCHES rows."""
    feats = _finite_rows(feats)
    if len(feats) < MIN_PATCHES:
        return float("nan")
    mu, cov = (np.asarray(m, np.float64) for m in model)
    d = mu.ravel() - feats.mean(axis=0)
    return float(np.sqrt(max(d @ linalg.pinv((cov + np.cov(feats, rowvar=False)) / 2) @ d, 0.0)))


@lru_cache(maxsize=1)
def standard_niqe_model() -> Model:
    """The release's pristine model (125 natural images, 96 × 96 patches), read-only arrays."""
    from study.metrics.niqe_model import pristine_model

    mu, cov = pristine_model()
    mu.flags.writeable = cov.flags.writeable = False
    return mu, cov


def niqe(img: np.ndarray, model: Optional[Model] = None, patch: int = NIQE_PATCH) -> float:
    """NIQE of a 2-D gray image in [0, 1] (scaled ×255 inside), lower is better; `model` a pristine (ν, Σ), default
    the standard one, whose 96 × 96 patches `patch` must match. NaN when fewer than MIN_PATCHES patches with finite
    features fit: with 96-pixel patches an image needs at least 96 × 192 pixels (demo slices of 64² or 128² give NaN;
    CT-NIQE scales its patches instead)."""
    return niqe_distance(niqe_features(img, patch)[0], standard_niqe_model() if model is None else model)


def fit_niqe_model(images: Iterable[np.ndarray], patch: int = NIQE_PATCH, sharpness: float = SHARPNESS) -> Model:
    """A pristine model (ν, Σ) from gray images in [0, 1]: the 36 features of each image's patches whose sharpness
    (mean local deviation σ at full resolution, 0–255 scale) exceeds `sharpness` × the sharpest patch of the same
    image (the release's selection of undistorted content); rows with non-finite features left out. Score with the
    same `patch`."""
    rows = []
    for img in images:
        feats, sharp = niqe_features(img, patch)
        if len(sharp):
            rows.append(feats[sharp > sharpness * sharp.max()])
    feats = _finite_rows(np.vstack(rows)) if rows else np.empty((0, 36))
    if len(feats) < 2:
        raise ValueError(f"NIQE model: {len(feats)} usable {patch} × {patch} patches; at least 2 are needed (more "
                         f"than 36 for a full-rank covariance)")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)
