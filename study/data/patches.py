"""Prepared arrays shared by all trials, and random patch sampling for training.

Data are prepared once per study into a folder of `.npy` files (memory-mappable) named by the data id, written
to a temporary folder and renamed into place so that a crash never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from study.config import DataSpec
from study.grid import short_hash

GENERATOR_VERSION = "phantom-v1"
SPLITS = ("train", "val", "test")


def data_id(spec: DataSpec) -> str:
    return short_hash({"data": spec.model_dump(), "generator": GENERATOR_VERSION})


@dataclass
class Prepared:
    path: Path
    data_id: str
    sha256: str  # of the array bytes

    def load(self, split: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
        mode = "r" if mmap else None
        return (np.load(self.path / f"{split}_ld.npy", mmap_mode=mode), np.load(self.path / f"{split}_fd.npy", mmap_mode=mode))

    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())


def _slice_seed(base: int, split: str, i: int) -> int:
    return int(hashlib.sha256(f"{base}/{split}/{i}".encode()).hexdigest()[:8], 16)


def _make_pair(spec: DataSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from study.data.phantoms import phantom_slice
    from study.data.simulate import low_dose

    clean = phantom_slice(seed, spec.size)
    kw = dict(photons=spec.photons, electronic_noise=spec.electronic_noise, pixel_mm=spec.fov_mm / spec.size,
              n_angles=spec.n_angles)
    fd = low_dose(clean, 1.0, seed=seed + 1, **kw)
    ld = low_dose(clean, spec.dose_fraction, seed=seed + 2, **kw)
    return ld, fd


def prepare(spec: DataSpec, cache_dir: Path, progress: Optional[Callable[[int, int], None]] = None) -> Prepared:
    """Generate (or reuse) the study's paired low/full-dose slices. Deterministic by `spec.seed`."""
    did = data_id(spec)
    final = Path(cache_dir) / f"data-{did}"
    if (final / "manifest.json").is_file():
        return Prepared(final, did, json.loads((final / "manifest.json").read_text())["sha256"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".data-tmp-", dir=cache_dir))
    try:
        counts = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
        total, done = sum(counts.values()), 0
        digest = hashlib.sha256()
        image_ids = {}
        for split in SPLITS:
            lds, fds = [], []
            for i in range(counts[split]):
                ld, fd = _make_pair(spec, _slice_seed(spec.seed, split, i))
                lds.append(ld)
                fds.append(fd)
                done += 1
                if progress:
                    progress(done, total)
            for kind, arr in (("ld", np.stack(lds)), ("fd", np.stack(fds))):
                np.save(tmp / f"{split}_{kind}.npy", arr)
                digest.update(arr.tobytes())
            image_ids[split] = [f"{split}-{i:04d}" for i in range(counts[split])]
        manifest = {"data_id": did, "sha256": digest.hexdigest(), "spec": spec.model_dump(),
                    "generator": GENERATOR_VERSION, "image_ids": image_ids,
                    "geometry": "2-D parallel beam over 180°, FBP with ramp filter (scikit-image)"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Prepared(final, did, json.loads((final / "manifest.json").read_text())["sha256"])


def sample_patches(ld: np.ndarray, fd: np.ndarray, batch: int, size: int, rng: np.random.Generator):
    """`batch` random aligned patches (size × size) from random slices; returns two float32 arrays [B, 1, s, s]."""
    n, h, w = ld.shape
    idx = rng.integers(0, n, batch)
    ys = rng.integers(0, h - size + 1, batch)
    xs = rng.integers(0, w - size + 1, batch)
    a = np.stack([ld[i, y:y + size, x:x + size] for i, y, x in zip(idx, ys, xs)])[:, None]
    b = np.stack([fd[i, y:y + size, x:x + size] for i, y, x in zip(idx, ys, xs)])[:, None]
    return a.astype(np.float32), b.astype(np.float32)
