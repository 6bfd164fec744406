"""Procedural abdomen-like CT slices in HU, deterministic by seed (the embedded demo data).

Each slice: an elliptical body with a subcutaneous fat layer and muscle wall, liver, spleen, kidneys, aorta and
vena cava (contrast-enhanced), bowel gas, a vertebra (cortical shell, cancellous core), low-contrast lesions in
the liver, and smooth tissue texture. Values follow typical portal-venous HU ranges.

`phantom_slice(..., geometry=True)` also returns what the CT-specific quality metrics need: a label map (1 = liver
parenchyma, 2 + k = lesion k, 0 = anything else) and the body outline (an ellipse, in pixels) whose air → fat edge
gives the edge-width profile.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0):
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u = (dx * c + dy * s) / rx
    v = (-dx * s + dy * c) / ry
    return u * u + v * v <= 1.0


LIVER, FIRST_LESION = 1, 2  # label-map values


def phantom_slice(seed: int, size: int = 128, geometry: bool = False):
    """One synthetic abdominal slice, float32 HU, shape (size, size), air (−1000) outside the body; with
    `geometry`, (image, labels uint8 (size, size), body outline {cy, cx, ry, rx} in pixels)."""
    rng = np.random.default_rng(seed)
    u = lambda a, b: rng.uniform(a, b)  # noqa: E731
    yy, xx = np.mgrid[0:1:size * 1j, 0:1:size * 1j]
    img = np.full((size, size), -1000.0)
    (cy, cx, ry, rx), body, cavity = _body(img, yy, xx, u)
    liver_hu = _organs(img, yy, xx, cy, cx, cavity, u, rng)
    _vessels_and_spine(img, yy, xx, cy, cx, u)
    labels = _lesions(img, yy, xx, cy, cx, liver_hu, u, rng)
    # smooth texture inside the body
    tex = gaussian_filter(rng.standard_normal((size, size)), sigma=size / 64)
    tex *= 12.0 / (tex.std() + 1e-12)
    img = np.where(body, img + tex, img)
    img = gaussian_filter(img, sigma=0.6)  # finite resolution of a real scanner
    img[~body] = -1000.0
    if not geometry:
        return img.astype(np.float32)
    px = size - 1  # the unit square's coordinates → pixel indices
    outline = {"cy": cy * px, "cx": cx * px, "ry": ry * px, "rx": rx * px}
    return img.astype(np.float32), labels, outline


def _body(img, yy, xx, u):
    """Subcutaneous fat, muscle wall and visceral fat; returns the outline (cy, cx, ry, rx), body and cavity masks."""
    cy, cx = 0.5 + u(-0.02, 0.02), 0.5 + u(-0.02, 0.02)
    ry, rx = u(0.30, 0.36), u(0.40, 0.45)
    body = _ellipse(yy, xx, cy, cx, ry, rx)
    fat = u(0.03, 0.06)
    img[body] = u(-110, -80)  # subcutaneous fat
    inner = _ellipse(yy, xx, cy, cx, ry - fat, rx - fat)
    img[inner] = u(35, 55)  # muscle wall
    cavity = _ellipse(yy, xx, cy, cx, ry - fat - 0.03, rx - fat - 0.03)
    img[cavity] = u(-100, -60)  # visceral fat
    return (cy, cx, ry, rx), body, cavity


def _organs(img, yy, xx, cy, cx, cavity, u, rng) -> float:
    """Liver, spleen, kidneys, bowel wall and gas pockets inside the cavity; returns the liver's HU."""
    organs = [
        # (cy, cx, ry, rx, HU) relative to body centre
        (-0.02, -0.17, 0.17, 0.15, u(55, 70)),  # liver (image left = patient right)
        (-0.06, 0.22, 0.08, 0.07, u(45, 55)),  # spleen
        (0.09, -0.12, 0.06, 0.04, u(150, 190)),  # right kidney (cortex enhancing)
        (0.09, 0.12, 0.06, 0.04, u(150, 190)),  # left kidney
        (-0.06, 0.05, 0.07, 0.09, u(25, 40)),  # stomach / bowel wall
    ]
    for oy, ox, oy_r, ox_r, hu in organs:
        m = _ellipse(yy, xx, cy + oy + u(-0.01, 0.01), cx + ox + u(-0.01, 0.01),
                     oy_r * u(0.85, 1.15), ox_r * u(0.85, 1.15), u(-0.4, 0.4)) & cavity
        img[m] = hu
    for _ in range(rng.integers(1, 4)):  # bowel gas pockets
        m = _ellipse(yy, xx, cy + u(-0.1, 0.05), cx + u(-0.05, 0.15), u(0.01, 0.03), u(0.01, 0.04)) & cavity
        img[m] = u(-950, -800)
    return organs[0][4]


def _vessels_and_spine(img, yy, xx, cy, cx, u) -> None:
    img[_ellipse(yy, xx, cy + 0.10, cx + 0.03, 0.022, 0.022)] = u(150, 220)  # aorta
    img[_ellipse(yy, xx, cy + 0.09, cx - 0.04, 0.025, 0.02)] = u(110, 160)  # vena cava
    # vertebra: cortical shell, cancellous core, spinous process
    vy, vx = cy + 0.19, cx
    img[_ellipse(yy, xx, vy, vx, 0.055, 0.06)] = u(600, 900)
    img[_ellipse(yy, xx, vy, vx, 0.042, 0.047)] = u(180, 280)
    img[_ellipse(yy, xx, vy + 0.08, vx, 0.03, 0.012)] = u(500, 800)


def _lesions(img, yy, xx, cy, cx, liver_hu: float, u, rng) -> np.ndarray:
    """1–3 low-contrast lesions in the liver; returns the label map (LIVER, FIRST_LESION + k)."""
    labels = np.where(img == liver_hu, LIVER, 0).astype(np.uint8)
    for k in range(rng.integers(1, 4)):
        r = u(0.012, 0.03)
        m = _ellipse(yy, xx, cy - 0.02 + u(-0.08, 0.08), cx - 0.17 + u(-0.07, 0.07), r, r * u(0.8, 1.2))
        m &= np.abs(img - liver_hu) < 1
        img[m] = liver_hu + rng.choice([-1, 1]) * u(10, 30)
        labels[m] = FIRST_LESION + k
    return labels
