"""Embedded data: phantoms, projection-domain low-dose simulation, the per-study cache."""

from __future__ import annotations

import numpy as np
import pytest

from study.spec import DataSpec
from study.data.cache import data_id, build_cache, sample_patches
from study.data.phantoms import phantom_slice
from study.data.simulate import low_dose


def test_phantom_is_deterministic_and_anatomical():
    a, b, c = phantom_slice(5, 96), phantom_slice(5, 96), phantom_slice(6, 96)
    assert a.dtype == np.float32 and a.shape == (96, 96)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a[0, 0] == -1000  # air outside the body
    assert (a > 300).any()  # bone
    soft = a[(a > -150) & (a < 250)]
    assert soft.size > 0.2 * a.size  # mostly soft tissue inside the body


def _water_disc(size=128, hu=0.0):
    yy, xx = np.mgrid[:size, :size]
    r = (size - 1) / 2
    img = np.full((size, size), -1000.0, np.float32)
    img[(yy - r) ** 2 + (xx - r) ** 2 < (0.4 * size) ** 2] = hu
    return img


def test_simulation_is_deterministic_by_seed():
    img = phantom_slice(1, 64)
    a = low_dose(img, 0.25, seed=3)
    assert np.array_equal(a, low_dose(img, 0.25, seed=3))
    assert not np.array_equal(a, low_dose(img, 0.25, seed=4))


def test_noise_scales_as_one_over_sqrt_dose_and_mean_is_preserved():
    disc = _water_disc(128)
    yy, xx = np.mgrid[:128, :128]
    roi = (yy - 63.5) ** 2 + (xx - 63.5) ** 2 < 25**2
    kw = dict(photons=1e5, electronic_noise=0.0, pixel_mm=350 / 128)
    full = [low_dose(disc, 1.0, seed=s, **kw)[roi] for s in range(3)]
    quarter = [low_dose(disc, 0.25, seed=10 + s, **kw)[roi] for s in range(3)]
    sd_full, sd_quarter = np.mean([f.std() for f in full]), np.mean([q.std() for q in quarter])
    assert sd_quarter / sd_full == pytest.approx(2.0, rel=0.15)
    assert abs(np.mean([q.mean() for q in quarter])) < 5.0  # mean HU of water preserved within 5 HU


def test_prepare_caches_once_and_hashes(tmp_path):
    spec = DataSpec(size=32, n_train=2, n_val=1, n_test=2, n_angles=32, seed=1)
    calls = []
    first = build_cache(spec, tmp_path, progress=lambda done, total: calls.append(done))
    assert calls and first.data_id == data_id(spec)
    mtime = (first.path / "test_ld.npy").stat().st_mtime_ns
    calls.clear()
    again = build_cache(spec, tmp_path, progress=lambda done, total: calls.append(done))
    assert again.sha256 == first.sha256 and not calls  # cached: nothing regenerated
    assert (again.path / "test_ld.npy").stat().st_mtime_ns == mtime
    ld, fd = first.load("test")
    assert ld.shape == fd.shape == (2, 32, 32) and not np.array_equal(ld, fd)
    other = build_cache(spec.model_copy(update={"dose_fraction": 0.5}), tmp_path)
    assert other.data_id != first.data_id


def test_sample_patches_are_paired_crops():
    rng = np.random.default_rng(0)
    fd = rng.normal(size=(3, 40, 40)).astype(np.float32)
    ld = fd + 1.0
    a, b = sample_patches(ld, fd, 5, 16, rng)
    assert a.shape == b.shape == (5, 1, 16, 16)
    np.testing.assert_allclose(a - b, 1.0, rtol=0, atol=1e-6)


def test_patches_cut_on_the_device_equal_the_host_ones():
    import torch

    from study.data.ct import hu_to_unit
    from study.trial.train import unit_batch

    rng = np.random.default_rng(0)
    ld, fd = rng.normal(0, 100, (5, 40, 40)).astype(np.float32), rng.normal(0, 100, (5, 40, 40)).astype(np.float32)
    hu = (-1024.0, 3072.0)
    host = unit_batch(ld, fd, 4, 16, hu, np.random.default_rng(7))
    on_dev = unit_batch(torch.from_numpy(hu_to_unit(ld, *hu)), torch.from_numpy(hu_to_unit(fd, *hu)), 4, 16, hu,
                        np.random.default_rng(7))
    for a, b in zip(host, on_dev):
        assert a.shape == b.shape == (4, 1, 16, 16) and torch.allclose(a, b)
