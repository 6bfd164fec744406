"""Hounsfield units: normalisation for the network and display windows for metrics."""

from __future__ import annotations

import numpy as np

MU_WATER_PER_MM = 0.0192  # linear attenuation of water at ~70 keV, 1/mm


def hu_to_unit(hu, hu_min: float = -1024.0, hu_max: float = 3072.0):
    """HU → [0, 1] by the study's normalisation range (paper 1: [−1024, 3072]); no clipping."""
    return (hu - hu_min) / (hu_max - hu_min)


def unit_to_hu(x, hu_min: float = -1024.0, hu_max: float = 3072.0):
    return x * (hu_max - hu_min) + hu_min


def window(hu, low: float, high: float):
    """HU → [0, 1] inside the display window [low, high], clipped."""
    return np.clip((np.asarray(hu, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def hu_to_mu(hu, mu_water: float = MU_WATER_PER_MM):
    """HU → linear attenuation (1/mm); air (−1000 HU) → 0, negatives clipped."""
    return np.maximum(mu_water * (1.0 + np.asarray(hu, dtype=np.float64) / 1000.0), 0.0)


def mu_to_hu(mu, mu_water: float = MU_WATER_PER_MM):
    return 1000.0 * (np.asarray(mu, dtype=np.float64) / mu_water - 1.0)
