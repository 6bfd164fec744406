"""Projection-domain low-dose simulation (Zeng et al. 2015 style), parallel beam.

HU → attenuation μ → line integrals p (radon) → counts I = Poisson(I0·d·e^−p) + N(0, σe²) → p' = −ln(I / (I0·d))
(counts below 1 photon are clamped to avoid log of zero/negative) → FBP (ramp filter) → HU.
scikit-image's radon/iradon is used: CPU, not differentiable, adequate for preparing data once per study.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.transform import iradon, radon

from study.data.ct import hu_to_mu, mu_to_hu


def _angles(n_angles: int | None, size: int) -> np.ndarray:
    n = n_angles or int(round(1.5 * size))
    return np.linspace(0.0, 180.0, n, endpoint=False)


def projections(image_hu: np.ndarray, *, pixel_mm: float, n_angles: int | None = None) -> np.ndarray:
    """Noise-free line integrals (dimensionless) of a square HU image, parallel beam over 180°."""
    mu = hu_to_mu(image_hu)
    with warnings.catch_warnings():
        # the image is air outside its inscribed circle (`low_dose`), but scikit-image checks its own circle (centre
        # at size // 2, half a pixel off ours for even sizes) and warns on every slice about the rim pixels between
        # the two; it leaves them out of the projections, as it always did: hiding the warning changes no data
        warnings.filterwarnings("ignore", message="Radon transform: image must be zero outside", category=UserWarning)
        return radon(mu, theta=_angles(n_angles, image_hu.shape[0]), circle=True) * pixel_mm


def reconstruct(sinogram: np.ndarray, *, pixel_mm: float, size: int) -> np.ndarray:
    """FBP (ramp filter) of line integrals back to HU."""
    theta = np.linspace(0.0, 180.0, sinogram.shape[1], endpoint=False)
    mu = iradon(sinogram / pixel_mm, theta=theta, filter_name="ramp", circle=True, output_size=size)
    return mu_to_hu(mu)


def noisy_sinogram(sino: np.ndarray, dose_fraction: float, photons: float, electronic_noise: float,
                   rng: np.random.Generator) -> np.ndarray:
    i0 = photons * dose_fraction
    counts = rng.poisson(i0 * np.exp(-sino)).astype(np.float64)
    if electronic_noise > 0:
        counts += rng.normal(0.0, electronic_noise, size=counts.shape)
    counts = np.maximum(counts, 1.0)  # safe log: at least one photon
    return -np.log(counts / i0)


def low_dose(image_hu: np.ndarray, dose_fraction: float, *, photons: float = 1e5, electronic_noise: float = 10.0,
             seed: int = 0, pixel_mm: float = 0.7, n_angles: int | None = None,
             input_photons: float | None = None) -> np.ndarray:
    """A simulated acquisition of `image_hu` at `dose_fraction` of `photons` per ray, reconstructed by FBP, in HU.

    Deterministic for a given seed. `dose_fraction=1` gives a full-dose acquisition (with its own noise).
    `input_photons`: the image is itself a real scan acquired at that flux (it already carries its noise); then only
    the missing noise is inserted, at the flux I_add with 1/I_add = 1/(photons·dose) − 1/input_photons, so that the
    result's quantum noise matches an acquisition at photons·dose.
    """
    image_hu = np.asarray(image_hu, dtype=np.float64)
    if image_hu.ndim != 2 or image_hu.shape[0] != image_hu.shape[1]:
        raise ValueError(f"low_dose needs a square 2-D image, got shape {image_hu.shape}")
    if not 0 < dose_fraction <= 1:
        raise ValueError(f"dose_fraction must be in (0, 1], got {dose_fraction}")
    if input_photons is not None:
        target = photons * dose_fraction
        if target >= input_photons:
            return np.asarray(image_hu, np.float32)
        photons, dose_fraction = 1.0 / (1.0 / target - 1.0 / input_photons), 1.0
    size = image_hu.shape[0]
    # radon(circle=True) assumes nothing outside the inscribed circle: set it to air
    yy, xx = np.mgrid[:size, :size]
    r = (size - 1) / 2
    outside = (yy - r) ** 2 + (xx - r) ** 2 > r**2
    image_hu = np.where(outside, -1000.0, image_hu)
    sino = projections(image_hu, pixel_mm=pixel_mm, n_angles=n_angles)
    rng = np.random.default_rng(seed)
    noisy = noisy_sinogram(sino, dose_fraction, photons, electronic_noise, rng)
    out = reconstruct(noisy, pixel_mm=pixel_mm, size=size)
    out[outside] = -1000.0
    return out.astype(np.float32)
