"""Loss terms and the perceptual influence Ψ (pure math: no Ray, MLflow or SLURM).

Ψ = λ·L_P / (L_pixel + λ·L_P) is the share of the total loss that is perceptual (paper 1). Loss magnitudes differ by
orders of magnitude between layers and encoders, so λ alone says little; Ψ says how much the pixel term still counts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pixel_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (paper 1's pixel term)."""
    return F.mse_loss(output, target)


def perceptual_loss(encoder, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between frozen encoder features of output and target (target features carry no gradient)."""
    with torch.no_grad():
        ft = encoder(target)
    return F.mse_loss(encoder(output), ft)


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
