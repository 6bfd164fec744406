"""`study simulate`: a full-dose DICOM series (or a tree of series) → a paired low/full-dose dataset on disk.

Output folder: full.npy, low.npy (float32 HU, [n, y, x]), meta.json (per slice) and manifest.json (inputs, hashes,
geometry, parameters). Written to a temporary folder and renamed into place: a failure leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from study.errors import StudyError


def simulate_folder(src: Path, out: Path, *, dose_fraction: float, photons: float, electronic_noise: float, seed: int,
                    n_angles: Optional[int] = None, workers: Optional[int] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> dict:
    from study.data.dicom import find_series, read_series
    from study.data.sources import simulate_series

    if not 0 < dose_fraction <= 1:
        raise StudyError(f"--dose: must be in (0, 1], got {dose_fraction}")
    if out.exists():
        raise StudyError(f"{out}: already exists; choose a new output folder")
    series = find_series(src)
    if not series:
        raise StudyError(f"{src}: no DICOM series found")
    volumes = []
    for uid, folders in sorted(series.items()):
        for folder in folders:
            volumes.append(read_series(folder))
    total = sum(len(v) for v, _ in volumes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-tmp-", dir=out.parent))
    try:
        shape = volumes[0][1].shape
        if any(m.shape != shape for _, m in volumes) or shape[0] != shape[1]:
            raise StudyError(f"{src}: all slices must share one square shape (got {sorted({m.shape for _, m in volumes})})")
        full = np.lib.format.open_memmap(tmp / "full.npy", mode="w+", dtype=np.float32, shape=(total, *shape))
        low = np.lib.format.open_memmap(tmp / "low.npy", mode="w+", dtype=np.float32, shape=(total, *shape))
        metas, n = [], 0
        for vol, meta in volumes:
            pairs = simulate_series(vol, meta, list(range(len(vol))), dose_fraction=dose_fraction, photons=photons,
                                    electronic_noise=electronic_noise, n_angles=n_angles, seed=seed, workers=workers)
            for k, fd, ld in pairs:
                full[n] = fd
                low[n] = ld
                metas.append({"index": n, "patient": meta.patient, "series_uid": meta.series_uid,
                              "position_mm": meta.positions[k], "file": meta.files[k]})
                n += 1
                if progress:
                    progress(n, total)
        full.flush()
        low.flush()
        hashes = {name: hashlib.sha256(np.load(tmp / name, mmap_mode="r").tobytes()).hexdigest()
                  for name in ("full.npy", "low.npy")}
        manifest = {"source": str(src.resolve()), "slices": total, "shape": list(shape), "dose_fraction": dose_fraction,
                    "photons": photons, "electronic_noise": electronic_noise, "seed": seed, "n_angles": n_angles,
                    "sha256": hashes, "series": [m.to_dict() | {"files": len(m.files)} for _, m in volumes],
                    "geometry": "2-D parallel beam over 180°, ramp FBP (scikit-image); noise inserted so that the "
                                "result matches an acquisition at photons × dose, the input being a scan at photons"}
        (tmp / "meta.json").write_text(json.dumps(metas))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
        del full, low
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
