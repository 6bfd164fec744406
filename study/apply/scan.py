"""The scan `study denoise` reads, as HU slices [n, y, x] float32 with what is needed to write the result back.

Input: a folder holding one DICOM series (any file names; files that are not DICOM, or DICOM without pixel data,
are skipped), a single DICOM file, a folder of `.npy` files or one `.npy` (each a 2-D slice or a 3-D stack, in HU).
DICOM slices are sorted by ImagePositionPatient along the slice normal, else by InstanceNumber, else by file name;
`.npy` files by name. One-line StudyErrors: missing input, empty folder, several series in one folder, another
modality than CT, slices of different sizes, unreadable or non-numeric arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study.data.dicom import dicom_files, hu_of, slice_position
from study.errors import StudyError


@dataclass
class Scan:
    hu: np.ndarray  # [n, y, x] float32, every slice of the input in order
    names: list[str]  # output file names: one per slice (DICOM) or one per .npy file
    datasets: list = field(default_factory=list)  # the pydicom datasets, in slice order (DICOM input)
    shapes: list = field(default_factory=list)  # each .npy file's shape; its slices are consecutive in `hu`
    what: str = ""  # one line for the summary, e.g. "DICOM series 1.2.3"

    @property
    def is_dicom(self) -> bool:
        return bool(self.datasets)


def read_scan(path: Path) -> Scan:
    """The scan at `path` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: no such file or folder")
    if path.is_file():
        return read_npy([path]) if path.suffix.lower() == ".npy" else read_dicom([path], path)
    files = dicom_files(path)
    if not files:
        raise StudyError(f"{path}: empty folder, no DICOM or .npy files")
    npys = [p for p in files if p.suffix.lower() == ".npy"]
    return read_npy(npys) if npys else read_dicom(files, path)


def read_npy(paths: list[Path]) -> Scan:
    """`.npy` files in name order, each a 2-D slice or a 3-D stack of one slice size, finite numbers in HU."""
    paths = sorted(paths, key=lambda p: p.name)
    slices, shapes, ref = [], [], None
    for path in paths:
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - truncated, pickled or foreign files raise many kinds
            raise StudyError(f"{path}: not a readable .npy ({type(err).__name__}: {err})".splitlines()[0]) from None
        if arr.ndim not in (2, 3) or arr.size == 0:
            raise StudyError(f"{path}: shape {arr.shape}, expected a 2-D slice or a 3-D stack of slices")
        if arr.dtype.kind not in "biuf":
            raise StudyError(f"{path}: dtype {arr.dtype}, expected numbers in HU")
        if not np.isfinite(arr).all():
            raise StudyError(f"{path}: holds NaN or infinite values")
        if ref is not None and arr.shape[-2:] != ref[1]:
            raise StudyError(f"{path}: slice size {arr.shape[-2:]} differs from {ref[1]} in {ref[0].name}")
        ref = ref or (path, arr.shape[-2:])
        shapes.append(arr.shape)
        slices.append(arr.reshape(-1, *arr.shape[-2:]).astype(np.float32))
    hu = np.concatenate(slices)
    return Scan(hu, [p.name for p in paths], shapes=shapes,
                what=f"{len(paths)} .npy file(s)")


def _dataset(path: Path, single: bool):
    """The file's dataset with pixels, or None where it is no DICOM image (an error for a single input file)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        if single:
            raise StudyError(f"{path}: neither a DICOM file nor a .npy") from None
        return None
    except Exception as err:  # noqa: BLE001 - truncated or corrupt files raise many kinds
        raise StudyError(f"{path}: unreadable DICOM ({type(err).__name__}: {err})".splitlines()[0]) from None
    if "PixelData" not in ds:
        if single:
            raise StudyError(f"{path}: a DICOM file without pixel data")
        return None
    return ds


def _check(found: list, where: Path) -> None:
    """One CT series of one slice size, with the rescale that gives HU."""
    series = {}
    for path, ds in found:
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(path.name)
    if len(series) > 1:
        parts = [f"{uid or '(none)'}: {len(names)} file(s), e.g. {names[0]}" for uid, names in series.items()]
        raise StudyError(f"{where}: several series in one folder ({'; '.join(parts)}); give one series per folder")
    ref_path, ref = found[0]
    for path, ds in found:
        if ds.get("Modality", None) != "CT":
            raise StudyError(f"{path}: Modality is {ds.get('Modality', None)!r}, expected 'CT'")
        for tag in ("RescaleSlope", "RescaleIntercept"):
            if ds.get(tag, None) in (None, ""):
                raise StudyError(f"{path}: missing {tag} (needed for HU)")
        if (ds.get("Rows"), ds.get("Columns")) != (ref.get("Rows"), ref.get("Columns")):
            raise StudyError(f"{path}: size {ds.get('Rows')}×{ds.get('Columns')} differs from "
                             f"{ref.get('Rows')}×{ref.get('Columns')} in {ref_path.name}")


def _order(found: list) -> list:
    """Along the slice normal where every slice has ImagePositionPatient, else by InstanceNumber, else by name."""
    if all(ds.get("ImagePositionPatient", None) for _, ds in found):
        return sorted(found, key=lambda f: slice_position(f[1]))
    if all(ds.get("InstanceNumber", None) not in (None, "") for _, ds in found):
        return sorted(found, key=lambda f: int(f[1].InstanceNumber))
    return sorted(found, key=lambda f: f[0].name)


def read_dicom(paths: list[Path], where: Path) -> Scan:
    """The CT series in `paths` (a folder's files, or one file)."""
    single = len(paths) == 1 and where.is_file()
    found = [(p, ds) for p in paths if (ds := _dataset(p, single)) is not None]
    if not found:
        raise StudyError(f"{where}: no DICOM images (and no .npy files)")
    _check(found, where)
    found = _order(found)
    hu = np.stack([hu_of(ds, path) for path, ds in found])
    uid = str(found[0][1].get("SeriesInstanceUID", ""))
    return Scan(hu, [p.name for p, _ in found], datasets=[ds for _, ds in found], what=f"DICOM series {uid}")
