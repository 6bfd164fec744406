"""Quality metrics of the loss-function study, checked against reference implementations and known images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from study.metrics import quality


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    ref = ndimage.gaussian_filter(rng.random((96, 96)), 2)
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    noisy = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1)
    blurred = ndimage.gaussian_filter(ref, 1.5)
    return ref, noisy, blurred


def test_gmsd_matches_piq_and_orders_distortions(images):
    piq = pytest.importorskip("piq")
    ref, noisy, blurred = images
    for img in (noisy, blurred):
        theirs = float(piq.gmsd(torch.as_tensor(img[None, None]), torch.as_tensor(ref[None, None]), data_range=1.0))
        assert quality.gmsd(img, ref) == pytest.approx(theirs, rel=1e-4, abs=1e-6)
    assert quality.gmsd(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_ms_ssim_and_vif_match_torchmetrics_and_skimage(images):
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import visual_information_fidelity

    ref, noisy, blurred = images
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms_ssim

    assert quality.ms_ssim(ref, ref) == pytest.approx(1.0, abs=1e-5)
    assert 0 < quality.ms_ssim(noisy, ref) < 0.99 and 0 < quality.ms_ssim(blurred, ref) < 0.99
    # on one scale the torchmetrics configuration used (Gaussian 11, σ 1.5, data range 1) is scikit-image SSIM
    skim = structural_similarity(noisy, ref, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
    one_scale = float(tm_ms_ssim(torch.as_tensor(noisy[None, None], dtype=torch.float32),
                                 torch.as_tensor(ref[None, None], dtype=torch.float32), data_range=1.0, betas=(1.0,)))
    assert one_scale == pytest.approx(skim, abs=0.01)  # the two treat the image border differently
    assert len(quality.ms_ssim_betas(96)) == 3 and len(quality.ms_ssim_betas(512)) == 5
    assert sum(quality.ms_ssim_betas(48)) == pytest.approx(1.0)
    assert quality.vif(ref, ref) == pytest.approx(1.0, abs=1e-3)
    theirs = float(visual_information_fidelity(torch.as_tensor(noisy[None, None] * 255, dtype=torch.float32),
                                               torch.as_tensor(ref[None, None] * 255, dtype=torch.float32)))
    assert quality.vif(noisy, ref) == pytest.approx(theirs, rel=1e-5)
    assert quality.vif(noisy, ref) < 0.9 and quality.vif(blurred, ref) < 0.9


def test_noise_std_and_cnr_on_a_phantom_with_known_noise():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:256, :256]
    lesion = (yy - 128) ** 2 + (xx - 128) ** 2 < 20**2
    background = ((yy - 128) ** 2 + (xx - 128) ** 2 > 30**2) & ((yy - 128) ** 2 + (xx - 128) ** 2 < 90**2)
    image = np.where(lesion, 60.0, 40.0) + rng.normal(0, 10.0, (256, 256))  # 20 HU contrast, σ = 10 HU
    assert quality.noise_std(image, background) == pytest.approx(10.0, rel=0.03)
    assert quality.cnr(image, lesion, background) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0])
def test_edge_width_of_a_gaussian_blurred_step(sigma):
    x = np.arange(-40, 40, 0.05)
    from scipy.special import ndtr

    profile = ndtr(x / sigma) * 100 - 50  # a unit step blurred by N(0, σ²), in HU
    assert quality.edge_width(profile, spacing=0.05) == pytest.approx(2 * 1.2816 * sigma, rel=0.01)
    assert quality.edge_width(profile[::-1], spacing=0.05) == pytest.approx(2 * 1.2816 * sigma, rel=0.01)
