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
