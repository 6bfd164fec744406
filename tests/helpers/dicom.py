"""Real DICOM CT files written with pydicom, the way scanners store them (int16/uint16 + rescale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, RLELossless, generate_uid


def write_slice(path: Path, hu: np.ndarray, *, patient="P1", series_uid=None, z=0.0, thickness=1.0, spacing=(0.7, 0.7),
                kernel="B30", slope=1.0, intercept=-1024.0, signed=True, compress=False, modality="CT",
                instance=1, drop=()) -> Path:
    stored = np.round((np.asarray(hu, np.float64) - intercept) / slope)
    arr = stored.astype(np.int16 if signed else np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.StudyInstanceUID = modality, patient, generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-100.0, -100.0, float(z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness = thickness
    ds.ConvolutionKernel = kernel
    ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = arr.tobytes()
    for tag in drop:
        delattr(ds, tag)
    if compress:
        ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, volume: np.ndarray, *, z0=0.0, thickness=1.0, shuffle=True, seed=0, **kw) -> list[Path]:
    """Slices at z0 + i·thickness; file names and InstanceNumbers deliberately in a different order."""
    uid = kw.pop("series_uid", None) or generate_uid()
    order = np.random.default_rng(seed).permutation(len(volume)) if shuffle else np.arange(len(volume))
    paths = []
    for name_idx, i in enumerate(order):
        paths.append(write_slice(folder / f"IMG{name_idx:04d}.dcm", volume[i], series_uid=uid, z=z0 + i * thickness,
                                 thickness=thickness, instance=len(volume) - name_idx, **kw))
    return paths


def phantom_volume(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    from study.data.phantoms import phantom_slice

    return np.stack([phantom_slice(seed + i, size) for i in range(n)])


def write_mayo_tree(root: Path, patients: list[str], n_slices=3, size=64, thickness=("1mm",), kernels=("B30", "D45")):
    """root/<patient>/{full,quarter}_<th>[_sharp]/ with paired positions, quarter dose simulated from the phantom."""
    from study.data.simulate import low_dose

    suffix = {"B30": "", "D45": "_sharp"}
    for k, pid in enumerate(patients):
        clean = phantom_volume(n_slices, size, seed=100 * k)
        for th in thickness:
            step = float(th.removesuffix("mm"))
            for ker in kernels:
                full = np.stack([low_dose(s, 1.0, seed=i, pixel_mm=350 / size) for i, s in enumerate(clean)])
                quarter = np.stack([low_dose(s, 0.25, seed=50 + i, pixel_mm=350 / size) for i, s in enumerate(clean)])
                for dose, vol in (("full", full), ("quarter", quarter)):
                    write_series(root / pid / f"{dose}_{th}{suffix[ker]}", vol, thickness=step, patient=pid,
                                 kernel=ker, seed=k)
    return root


def write_authors_tree(root: Path, patients: list[str], n_slices=3, size=32, thickness=("1mm",), kernels=("B30", "D45"),
                       pad=4, dtype=np.float64, seed=0) -> dict:
    """Paper 1's preprocessed arrays: root/npy_img/<thickness> <kernel>/<patient>_<slice>_{input,target}.npy holding
    (HU + 1024)/4096 (RED-CNN's prep.py), slice numbers zero-padded to `pad` digits. Returns {(patient, thickness,
    kernel, slice): (quarter-dose HU, full-dose HU)}, the integer HU written, as float32."""
    rng = np.random.default_rng(seed)
    written = {}
    for pid in patients:
        for th in thickness:
            for ker in kernels:
                folder = root / "npy_img" / f"{th} {ker}"
                folder.mkdir(parents=True, exist_ok=True)
                for s in range(n_slices):
                    full = rng.integers(-1024, 2500, (size, size))
                    quarter = np.clip(full + rng.integers(-60, 61, full.shape), -1024, 3071)
                    for io, hu in (("input", quarter), ("target", full)):
                        np.save(folder / f"{pid}_{s:0{pad}d}_{io}.npy", ((hu + 1024) / 4096).astype(dtype))
                    written[pid, th, ker, s] = (quarter.astype(np.float32), full.astype(np.float32))
    return written


def _dose_pair(k: int, n_slices: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(quarter, full) HU volumes of patient number k: a phantom, and the phantom plus seeded noise."""
    full = np.round(phantom_volume(n_slices, size, seed=100 * k))
    return np.round(full + np.random.default_rng(k).normal(0, 30, full.shape)), full


def write_aapm_release(root: Path, patients: list[str], n_slices=2, size=32, thickness=("1mm",), kernels=("B30", "D45"),
                       zip_folder=False) -> dict:
    """The AAPM challenge download: root/<th> <kernel>/[FD_<th>|QD_<th>/]<dose>_<th>[_sharp]/<patient>/<dose>_<th>
    [_sharp]/ (e.g. `1mm B30/full_1mm/L067/full_1mm/`), both kernels and thicknesses of a patient at the same
    positions. Returns {patient: (quarter HU, full HU)} as written (integers)."""
    suffix = {"B30": "", "D45": "_sharp"}
    written = {}
    for k, pid in enumerate(patients):
        written[pid] = _dose_pair(k, n_slices, size)
        for th in thickness:
            for ker in kernels:
                for dose, vol in zip(("quarter", "full"), written[pid]):
                    name = f"{dose}_{th}{suffix[ker]}"
                    group = root / f"{th} {ker}" / (f"{'FD' if dose == 'full' else 'QD'}_{th}" if zip_folder else "")
                    write_series(group / name / pid / name, vol, thickness=float(th.removesuffix("mm")), patient=pid,
                                 kernel=ker, seed=k)
    return written


def write_tcia_release(root: Path, patients: list[str], n_slices=2, size=32, collection=True) -> dict:
    """TCIA's LDCT-and-Projection-data as downloaded: [LDCT-and-Projection-data/]<patient>/<date>-NA-NA-<id>/
    <n>.000000-Full Dose Images-<id>/ and …-Low Dose Images-…/, plus a projection series (not images, not DICOM
    here) that a reader must leave alone. Returns {patient: (low HU, full HU)} as written (integers)."""
    base = root / "LDCT-and-Projection-data" if collection else root
    written = {}
    for k, pid in enumerate(patients):
        written[pid] = _dose_pair(k, n_slices, size)
        study = base / pid / f"08-23-2018-NA-NA-{62308 + k}"
        for n, (dose, vol) in enumerate(zip(("Low", "Full"), written[pid]), start=1):
            write_series(study / f"{n}.000000-{dose} Dose Images-{33335 + 10 * k + n}", vol, thickness=1.0, patient=pid,
                         kernel="B30", seed=k)
        proj = base / pid / f"08-23-2018-NA-NA-{72308 + k}" / "1.000000-Full dose projections-24362"
        proj.mkdir(parents=True)
        (proj / "1-001.dcm").write_bytes(b"projection data, not an image")
    return written
