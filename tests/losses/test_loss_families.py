"""The loss families of the second study: zero (or minimal) at identity, positive otherwise, finite gradients;
WGAN-GP's penalty on interpolates and its critic steps; Ψ generalised to k terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from study.losses.terms import PIXEL_TERMS, sobel_magnitude, term_shares


@pytest.fixture
def pair():
    torch.manual_seed(0)
    target = torch.rand(2, 1, 48, 48)
    noisy = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    return target, noisy


@pytest.mark.parametrize("name", sorted(PIXEL_TERMS))
def test_zero_at_identity_positive_otherwise_finite_gradient(name, pair):
    loss = PIXEL_TERMS[name]
    target, noisy = pair
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-4)
    out = noisy.clone().requires_grad_(True)
    value = loss(out, target)
    assert value.item() > 1e-3
    value.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_ssim_loss_matches_scikit_image(pair):
    from skimage.metrics import structural_similarity

    from study.losses.terms import ssim_loss

    target, noisy = pair
    ref = np.mean([structural_similarity(n[0].numpy(), t[0].numpy(), data_range=1.0, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False) for n, t in zip(noisy, target)])
    assert 1 - ssim_loss(noisy, target).item() == pytest.approx(ref, abs=2e-3)


def test_sobel_magnitude_of_a_step_edge():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 4:] = 1.0
    g = sobel_magnitude(x)[0, 0]
    assert g[:, 3:5].min() == pytest.approx(4.0) and g[:, :2].max() == pytest.approx(0.0, abs=1e-5)


def test_term_shares_generalise_psi():
    from study.losses import perceptual_influence

    shares = term_shares({"mse": 2e-3, "perceptual": 4.0}, {"mse": 1.0, "perceptual": 0.1})
    assert shares["perceptual"] == pytest.approx(perceptual_influence(2e-3, 4.0, 0.1))
    assert sum(term_shares({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1, "b": 1, "c": 2}).values()) == pytest.approx(1.0)


def test_wgan_gp_penalty_on_interpolates_and_counted_critic_steps():
    from study.losses.adversarial import WGANGP, gradient_penalty

    torch.manual_seed(0)
    gan = WGANGP("cpu", n_critic=3, width=8)
    real, fake = torch.rand(4, 1, 24, 24), torch.rand(4, 1, 24, 24)
    gp, x_hat = gradient_penalty(gan.critic, real, fake)
    # every interpolate lies on the segment between its real and fake sample
    eps = ((x_hat - fake) / (real - fake)).flatten(1)
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-4) and ((eps >= 0) & (eps <= 1)).all()
    assert gp.item() >= 0 and torch.isfinite(gp)
    for _ in range(gan.n_critic):
        gan.critic_step(real, fake)
    assert gan.steps == 3
    out = fake.clone().requires_grad_(True)
    g = gan.generator_loss(out)
    g.backward()
    assert torch.isfinite(out.grad).all()
    assert all(p.requires_grad for p in gan.critic.parameters())  # the critic is trainable again afterwards
