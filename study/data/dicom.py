"""CT series from DICOM: HU volumes sorted along the patient axis, their meta, and low/full-dose pairing.

pydicom reads the files (any transfer syntax it can decode); this module checks what a study relies on and says in
one line which file is wrong: CT modality, RescaleSlope/RescaleIntercept present, one series per folder, one shape
and pixel spacing per series, positions present and distinct. Slices are ordered by ImagePositionPatient projected
on the slice normal (from ImageOrientationPatient), never by file name or InstanceNumber.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from study.errors import StudyError


@dataclass
class SeriesMeta:
    patient: str
    series_uid: str
    slice_thickness: float | None
    kernel: str
    pixel_spacing: tuple[float, float]
    shape: tuple[int, int]
    positions: list[float] = field(default_factory=list)  # along the slice normal, mm, ascending
    files: list[str] = field(default_factory=list)
    description: str = ""
    manufacturer: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def read_dataset(path: Path, pixels: bool = True):
    """One DICOM file as a pydicom dataset (`pixels=False`: the header only, no pixel data read). A file that is not
    DICOM, or is truncated or corrupt, is a one-line StudyError naming it."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError:
        raise StudyError(f"{path}: not a DICOM file") from None
    except Exception as err:  # noqa: BLE001 - truncated or corrupt files raise many kinds
        raise StudyError(f"{path}: unreadable DICOM ({type(err).__name__}: {err})".splitlines()[0]) from None
    return ds


def _check(ds, path: Path) -> None:
    modality = ds.get("Modality", None)
    if modality != "CT":
        raise StudyError(f"{path}: Modality is {modality!r}, expected 'CT'")
    for tag in ("RescaleIntercept", "RescaleSlope", "ImagePositionPatient", "PixelSpacing"):
        if ds.get(tag, None) in (None, ""):
            raise StudyError(f"{path}: missing {tag}")


def _normal(ds) -> np.ndarray:
    iop = [float(v) for v in ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0])]
    n = np.cross(iop[:3], iop[3:])
    return n / (np.linalg.norm(n) or 1.0)


def slice_position(ds) -> float:
    """Where a slice lies along the patient axis, in mm: its ImagePositionPatient projected on the slice normal (from
    ImageOrientationPatient; axial where that is missing): what `read_series` orders slices by."""
    return float(np.dot(_normal(ds), [float(v) for v in ds.ImagePositionPatient]))


def hu_of(ds, path: Path) -> np.ndarray:
    """Stored values → HU with the file's slope and intercept (signedness and decompression by pydicom)."""
    try:
        raw = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - missing decoder, truncated pixel data, ...
        raise StudyError(f"{path}: cannot decode pixel data ({type(err).__name__}: {err})".splitlines()[0]) from None
    if raw.ndim != 2:
        raise StudyError(f"{path}: expected a single 2-D frame, got pixel array shape {raw.shape}")
    return (raw.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)).astype(np.float32)


def dicom_files(folder: Path) -> list[Path]:
    """Regular files of a folder (not recursive), skipping hidden files and DICOMDIR."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR")


def read_series(folder: str | Path) -> tuple[np.ndarray, SeriesMeta]:
    """One CT series → (volume in HU, float32 [z, y, x], meta), sorted along the patient axis."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudyError(f"{folder}: not a folder")
    files = dicom_files(folder)
    if not files:
        raise StudyError(f"{folder}: empty folder, no DICOM files")
    slices = []
    first = None
    for path in files:
        ds = read_dataset(path)
        _check(ds, path)
        if first is None:
            first = (ds, path)
        ref, ref_path = first
        if ds.SeriesInstanceUID != ref.SeriesInstanceUID:
            raise StudyError(f"{folder}: mixed series in one folder ({ref_path.name} is series {ref.SeriesInstanceUID}, "
                             f"{path.name} is series {ds.SeriesInstanceUID})")
        spacing = tuple(float(v) for v in ds.PixelSpacing)
        if spacing != tuple(float(v) for v in ref.PixelSpacing):
            raise StudyError(f"{path}: pixel spacing {spacing} differs from {tuple(float(v) for v in ref.PixelSpacing)} "
                             f"in {ref_path.name}")
        if (ds.Rows, ds.Columns) != (ref.Rows, ref.Columns):
            raise StudyError(f"{path}: shape {ds.Rows}×{ds.Columns} differs from {ref.Rows}×{ref.Columns} in {ref_path.name}")
        z = slice_position(ds)
        slices.append((z, path, hu_of(ds, path)))
    slices.sort(key=lambda s: s[0])
    zs = [s[0] for s in slices]
    for (z0, p0, _), (z1, p1, _) in zip(slices, slices[1:]):
        if abs(z1 - z0) < 1e-3:
            raise StudyError(f"{folder}: two slices at the same position {z0:.3f} mm ({p0.name}, {p1.name})")
    ds = first[0]
    thickness = ds.get("SliceThickness", None)
    kernel = ds.get("ConvolutionKernel", "")
    if isinstance(kernel, (list, tuple)) or (hasattr(kernel, "__iter__") and not isinstance(kernel, str)):
        kernel = "\\".join(str(k) for k in kernel)
    meta = SeriesMeta(
        patient=str(ds.get("PatientID", "")), series_uid=str(ds.SeriesInstanceUID),
        slice_thickness=float(thickness) if thickness not in (None, "") else None, kernel=str(kernel),
        pixel_spacing=tuple(float(v) for v in ds.PixelSpacing), shape=(int(ds.Rows), int(ds.Columns)),
        positions=zs, files=[str(s[1]) for s in slices], description=str(ds.get("SeriesDescription", "")),
        manufacturer=str(ds.get("Manufacturer", "")))
    return np.stack([s[2] for s in slices]), meta


def find_series(root: str | Path) -> dict[str, list[Path]]:
    """Every folder under `root` (itself included) that holds DICOM files, grouped by SeriesInstanceUID."""
    root = Path(root)
    if not root.is_dir():
        raise StudyError(f"{root}: not a folder")
    series: dict[str, set[Path]] = defaultdict(set)
    for folder in sorted({p.parent for p in root.rglob("*") if p.is_file()}):
        for path in dicom_files(folder):
            try:
                ds = read_dataset(path, pixels=False)
            except StudyError:
                continue  # not DICOM (notes, checksums, ...): read_series reports real problems later
            if "SeriesInstanceUID" in ds:
                series[str(ds.SeriesInstanceUID)].add(folder)
    return {uid: sorted(folders) for uid, folders in series.items()}


def pair_slices(low: SeriesMeta, full: SeriesMeta, tolerance_mm: float = 0.01) -> list[tuple[int, int]]:
    """Index pairs (low, full) of slices at the same position; a slice without a partner is an error."""
    if low.shape != full.shape:
        raise StudyError(f"patient {low.patient}: low-dose shape {low.shape} differs from full-dose {full.shape}")
    fz = np.asarray(full.positions)
    pairs, used = [], set()
    for i, z in enumerate(low.positions):
        j = int(np.argmin(np.abs(fz - z))) if len(fz) else -1
        if j < 0 or abs(fz[j] - z) > tolerance_mm:
            raise StudyError(f"patient {low.patient}: low-dose slice at {z:.2f} mm ({Path(low.files[i]).name}) has no "
                             f"full-dose partner")
        pairs.append((i, j))
        used.add(j)
    missing = [k for k in range(len(fz)) if k not in used]
    if missing:
        k = missing[0]
        raise StudyError(f"patient {full.patient}: full-dose slice at {fz[k]:.2f} mm ({Path(full.files[k]).name}) has no "
                         f"low-dose partner")
    return pairs
