"""Loss terms and the perceptual influence Ψ (pure math: no Ray, MLflow or SLURM).

Ψ = λ·L_P / (L_pixel + λ·L_P) is the share of the total loss that is perceptual (paper 1). Loss magnitudes differ by
orders of magnitude between layers and encoders, so λ alone says little; Ψ says how much the pixel term still counts.
"""

from __future__ import annotations

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

# the contract names live in torch-free study.psi (analysis/ uses them without torch)
from study.psi import lam_for_influence, perceptual_influence  # noqa: E402,F401
