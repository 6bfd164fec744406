"""Where pairs come from: each source yields (split, low-dose HU, full-dose HU, meta) one slice at a time.

Meta per slice: image_id, patient, block (slices that share an anatomical position share a block: the
reconstructions of one position, e.g. B30/D45 kernels, are one block for the statistics), position_mm, series.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from study.data.mayo import mayo
from study.data.pairs import block, pairs_from_series, subsample
from study.spec import DataSpec
from study.errors import StudyError


def slice_seed(base: int, *parts) -> int:
    return int(hashlib.sha256("/".join(map(str, (base, *parts))).encode()).hexdigest()[:8], 16)


# -- phantom -------------------------------------------------------------------------------------------------------

def parallel_map(fn, items: list, workers: int | None):
    """`map` in worker processes (order kept; results are deterministic because every item carries its seed)."""
    workers = min(workers or os.cpu_count() or 1, len(items))
    if workers <= 1:
        yield from map(fn, items)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        yield from pool.map(fn, items, chunksize=max(1, len(items) // (4 * workers)))


def _phantom_pair(job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    from study.data.phantoms import phantom_slice
    from study.data.simulate import low_dose

    seed, size, dose, kw = job
    clean, labels, body = phantom_slice(seed, size, geometry=True)
    return low_dose(clean, dose, seed=seed + 2, **kw), low_dose(clean, 1.0, seed=seed + 1, **kw), labels, body


def phantom(spec: DataSpec) -> Iterator[tuple[str, np.ndarray, np.ndarray, dict]]:
    kw = dict(photons=spec.photons, electronic_noise=spec.electronic_noise, pixel_mm=spec.fov_mm / spec.size,
              n_angles=spec.n_angles)
    slots = [(split, i) for split, n in (("train", spec.n_train), ("val", spec.n_val), ("test", spec.n_test))
             for i in range(n)]
    jobs = [(slice_seed(spec.seed, split, i), spec.size, spec.dose_fraction, kw) for split, i in slots]
    for (split, i), (ld, fd, labels, body) in zip(slots, parallel_map(_phantom_pair, jobs, spec.workers)):
        iid = f"{split}-{i:04d}"
        # labels (liver, lesions) and the body outline feed the CT-specific metrics (CNR, noise, edge width)
        yield split, ld, fd, {"image_id": iid, "patient": "phantom", "block": iid, "position_mm": 0.0, "series": "",
                              "body": body, "pixel_mm": spec.fov_mm / spec.size, "labels": labels}
    if spec.real_slices:
        yield from real_slices(spec)


REAL_FILES = ("CT_small.dcm", "693_UNCR.dcm")


def real_slice_paths() -> list[Path]:
    """The real CT slices shipped by pydicom (CT_small.dcm) and pydicom-data (693_UNCR.dcm), asked for by name
    (never a glob: that would try to download)."""
    from pydicom.data import get_testdata_file

    paths = []
    for name in REAL_FILES:
        try:
            p = get_testdata_file(name, download=False)
        except Exception:  # noqa: BLE001 - an old pydicom without the keyword, or no data package
            p = None
        if p:
            paths.append(Path(p))
    return paths


def real_slices(spec: DataSpec) -> Iterator[tuple[str, np.ndarray, np.ndarray, dict]]:
    """Extra test set "real": each shipped slice resampled to the study's size, low dose by the simulator with
    noise insertion (the slice is treated as a full-dose scan at `photons`)."""
    from skimage.transform import resize

    from study.data.dicom import hu_of, read_dataset
    from study.data.simulate import low_dose

    for k, path in enumerate(real_slice_paths()):
        ds = read_dataset(path)
        hu = hu_of(ds, path)
        hu = np.maximum(hu, -1024.0)  # padding outside the scan circle (e.g. −3024) is air
        pixel_mm = float(ds.PixelSpacing[0]) * hu.shape[0] / spec.size
        fd = resize(hu, (spec.size, spec.size), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
        ld = low_dose(fd, spec.dose_fraction, photons=spec.photons, electronic_noise=spec.electronic_noise,
                      seed=slice_seed(spec.seed, "real", k), pixel_mm=pixel_mm, n_angles=spec.n_angles,
                      input_photons=spec.photons)
        yield "real", ld, fd, {"image_id": f"real-{path.stem}", "patient": str(ds.get("PatientID", path.stem)),
                               "block": f"real-{path.stem}", "position_mm": 0.0, "series": path.name}


# -- DICOM sources (the Mayo layouts are in study.data.mayo) ---------------------------------------------

def tcia_rows(spec: DataSpec) -> list[dict]:
    path, root = Path(spec.manifest), Path(spec.root)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"patient", "split", "full", "low"}
    if not rows or not need <= set(rows[0]):
        raise StudyError(f"{path}: a TCIA manifest needs the columns {sorted(need)} and at least one row")
    for n, r in enumerate(rows, start=2):
        if r["split"] not in ("train", "val", "test"):
            raise StudyError(f"{path}: line {n}: split must be train, val or test (got {r['split']!r})")
        for key in ("full", "low"):
            if not (root / r[key]).is_dir():
                raise StudyError(f"{path}: line {n}: patient {r['patient']}: folder {root / r[key]} not found")
    by_patient: dict[str, set] = {}
    for r in rows:
        by_patient.setdefault(r["patient"], set()).add(r["split"])
    for pid, splits in by_patient.items():
        if len(splits) > 1:
            raise StudyError(f"{path}: patient {pid} is in several splits {sorted(splits)}: split by patient")
    return rows


def tcia(spec: DataSpec):
    root = Path(spec.root)
    for r in tcia_rows(spec):
        yield from pairs_from_series(r["split"], root / r["low"], root / r["full"], spec, Path(r["full"]).name)


def simulated_series(spec: DataSpec) -> list[tuple[str, str, Path]]:
    """(split, patient, folder) of the full-dose series under root, assigned to splits by PatientID."""
    from study.data.dicom import dicom_files, find_series, read_dataset

    wanted = {pid: split for split, ids in spec.patient_splits().items() for pid in ids}
    found = []
    for uid, folders in sorted(find_series(spec.root).items()):
        for folder in folders:
            pid = str(read_dataset(dicom_files(folder)[0], pixels=False).get("PatientID", ""))
            if pid in wanted:
                found.append((wanted[pid], pid, folder))
    have = {pid for _, pid, _ in found}
    for pid, split in wanted.items():
        if pid not in have:
            raise StudyError(f"data.splits: patient {pid!r} ({split}) has no CT series under {spec.root}")
    return found


def _simulate_slice(job: tuple) -> np.ndarray:
    from study.data.simulate import low_dose

    fd, dose, kw = job
    return low_dose(fd, dose, **kw)


def simulate_series(vol: np.ndarray, meta, ks: list[int], *, dose_fraction: float, photons: float,
                    electronic_noise: float, n_angles: int | None, seed: int, workers: int | None):
    """(k, full dose, simulated low dose) for slices `ks` of a real full-dose series (noise insertion: the series
    is a scan at `photons`); one seed per (patient, series, slice), so the result is the same for any `workers`."""
    jobs = [(np.maximum(vol[k], -1024.0), dose_fraction,
             dict(photons=photons, electronic_noise=electronic_noise, n_angles=n_angles, input_photons=photons,
                  seed=slice_seed(seed, meta.patient, meta.series_uid, k), pixel_mm=meta.pixel_spacing[0]))
            for k in ks]
    for k, job, ld in zip(ks, jobs, parallel_map(_simulate_slice, jobs, workers)):
        yield k, job[0], ld


def dicom_simulated(spec: DataSpec):
    from study.data.dicom import read_series

    for split, pid, folder in simulated_series(spec):
        vol, meta = read_series(folder)
        if meta.shape[0] != meta.shape[1]:
            raise StudyError(f"{folder}: the simulator needs square slices, got {meta.shape}")
        pairs = simulate_series(vol, meta, subsample(len(vol), spec), dose_fraction=spec.dose_fraction,
                                photons=spec.photons, electronic_noise=spec.electronic_noise, n_angles=spec.n_angles,
                                seed=spec.seed, workers=spec.workers)
        for n, (k, fd, ld) in enumerate(pairs):
            z = meta.positions[k]
            yield split, ld, fd, {"image_id": f"{pid}-{n:04d}", "patient": pid,
                                  "block": block(pid, z, meta.slice_thickness or 1.0),
                                  "position_mm": float(z), "series": meta.series_uid}


SOURCES = {"phantom": phantom, "mayo": mayo, "tcia": tcia, "dicom-simulated": dicom_simulated}


def _fingerprint(bases: list[Path]) -> str:
    """Cheap identity of files: the relative path (a file's own name), size and mtime of each, in order."""
    h = hashlib.sha256()
    for base in bases:
        items = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for p in items:
            st = os.stat(p)
            h.update(f"{p.relative_to(base) if p != base else p.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def folder_fingerprint(root: Path) -> str:
    """Cheap identity of a folder's files: relative path, size and mtime of each."""
    return _fingerprint([Path(root)])


def input_fingerprint(spec: DataSpec) -> str:
    """Cheap identity of the input files (relative path, size, mtime) so that changed data get a new data id."""
    if spec.source == "phantom":
        return ""
    paths = [Path(spec.root)] + ([Path(spec.manifest)] if spec.manifest else [])
    if not all(p.exists() for p in paths):
        return "unavailable"  # only in a dry run (the spec check makes real runs fail earlier)
    return _fingerprint(paths)


def count(spec: DataSpec) -> int | None:
    """Number of slices to prepare when known in advance (for progress bars), else None."""
    if spec.source == "phantom":
        return spec.n_train + spec.n_val + spec.n_test + (len(real_slice_paths()) if spec.real_slices else 0)
    return None
