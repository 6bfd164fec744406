"""Perceptual influence Ψ = λ·L_P / (L_pixel + λ·L_P) and its inverse in λ. Pure Python (no torch), so that the
analysis can use it too; `study.losses` re-exports both (contract names).
"""

from __future__ import annotations

import math


def perceptual_influence(pixel_loss: float, perceptual_loss: float, lam: float) -> float:
    """Ψ = λ·L_P / (L_pixel + λ·L_P) ∈ [0, 1]; 0 when λ = 0 or L_P = 0."""
    pixel_loss, perceptual_loss, lam = float(pixel_loss), float(perceptual_loss), float(lam)
    if pixel_loss < 0 or perceptual_loss < 0 or lam < 0:
        raise ValueError("losses and λ must be ≥ 0")
    weighted = lam * perceptual_loss
    total = pixel_loss + weighted
    return 0.0 if weighted == 0 else weighted / total


def lam_for_influence(psi: float, pixel_loss: float, perceptual_loss: float) -> float:
    """λ such that `perceptual_influence(pixel_loss, perceptual_loss, λ) == psi`: λ = Ψ·L_pixel / ((1 − Ψ)·L_P)."""
    psi, pixel_loss, perceptual_loss = float(psi), float(pixel_loss), float(perceptual_loss)
    if not 0 < psi < 1:
        raise ValueError(f"target Ψ must be in (0, 1), got {psi}")
    if not (pixel_loss > 0 and perceptual_loss > 0) or math.isinf(pixel_loss) or math.isinf(perceptual_loss):
        raise ValueError("both loss magnitudes must be finite and > 0")
    return psi * pixel_loss / ((1.0 - psi) * perceptual_loss)
