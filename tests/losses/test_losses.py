"""Losses and perceptual influence Ψ."""

from __future__ import annotations

import math

import pytest
import torch

from study.losses import lam_for_influence, perceptual_influence
from study.losses.terms import mse_loss, perceptual_loss


def test_psi_definition():
    assert perceptual_influence(1.0, 1.0, 1.0) == pytest.approx(0.5)
    assert perceptual_influence(0.002, 4.0, 0.1) == pytest.approx(0.4 / 0.402)
    assert perceptual_influence(0.5, 3.0, 0.0) == 0.0


@pytest.mark.parametrize("psi", [0.01, 0.5, 0.9, 0.95, 0.998])
@pytest.mark.parametrize("pix, perc", [(1e-3, 2.0), (0.02, 3e-3), (1.0, 1.0)])
def test_lam_for_influence_inverts_psi(psi, pix, perc):
    lam = lam_for_influence(psi, pix, perc)
    assert lam > 0
    assert perceptual_influence(pix, perc, lam) == pytest.approx(psi, rel=1e-9)


@pytest.mark.parametrize("psi", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_lam_for_influence_rejects_degenerate_targets(psi):
    with pytest.raises(ValueError):
        lam_for_influence(psi, 1e-3, 1.0)


def test_pixel_and_perceptual_losses_are_zero_at_identity_and_positive_otherwise():
    from study.encoders.vgg import feature_extractor

    torch.manual_seed(0)
    enc = feature_extractor("block2_conv2", "random")
    y = torch.rand(2, 1, 24, 24)
    x = (y + 0.1 * torch.randn_like(y)).clamp(0, 1).requires_grad_(True)
    assert mse_loss(y, y).item() == 0 and perceptual_loss(enc, y, y).item() == 0
    loss = mse_loss(x, y) + perceptual_loss(enc, x, y)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())
