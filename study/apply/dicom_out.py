"""The denoised scan as a new DICOM series: each input dataset copied with the denoised pixels.

Kept: the patient and study modules, geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing,
SliceThickness), rescale, windows and every other attribute. Changed: ImageType DERIVED\\SECONDARY (later values
kept), one new SeriesInstanceUID for the series, a new SOPInstanceUID per file (with the file meta's
MediaStorageSOPInstanceUID), SeriesNumber + 1000, SeriesDescription naming the model, DerivationDescription, and a
SourceImageSequence pointing at the input image. Pixels: round((HU − intercept) / slope), clipped to the range
BitsStored and PixelRepresentation allow; pixels equal to PixelPaddingValue in the input stay padding. Written
uncompressed (a compressed input's transfer syntax becomes Explicit VR Little Endian); the stale
Smallest/Largest pixel value attributes are removed. Text written is plain ASCII (no character set is changed).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from study.errors import StudyError

_STALE = ("SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
          "LargestPixelValueInSeries")
_SYMBOLS = {"·": "-", "λ": "lambda", "Ψ": "Psi", "ψ": "psi", "×": "x", "→": "->", "\\": "/"}


def ascii_text(text: str, limit: int) -> str:
    """`text` as ASCII (the default DICOM character set) within `limit` characters."""
    for symbol, plain in _SYMBOLS.items():
        text = text.replace(symbol, plain)
    return " ".join(text.encode("ascii", "replace").decode().split())[:limit]


def series_description(run_key: str, configuration: str) -> str:
    """SeriesDescription (LO, at most 64 characters): the tool, the run key and the configuration."""
    return ascii_text(f"denoised study {run_key[:12]} {configuration}", 64)


def stored_pixels(ds, hu: np.ndarray, path: str) -> np.ndarray:
    """HU → the dataset's stored values (its dtype, slope, intercept, BitsStored range; padding kept)."""
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    bits = int(ds.get("BitsAllocated", 16))
    dtypes = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}
    if (bits, signed) not in dtypes:
        raise StudyError(f"{path}: BitsAllocated {bits} is not supported for writing (8 or 16)")
    stored_bits = int(ds.get("BitsStored", bits))
    low, high = (-(2 ** (stored_bits - 1)), 2 ** (stored_bits - 1) - 1) if signed else (0, 2**stored_bits - 1)
    values = np.round((np.asarray(hu, np.float64) - float(ds.RescaleIntercept)) / float(ds.RescaleSlope))
    stored = np.clip(values, low, high).astype(dtypes[bits, signed])
    padding = ds.get("PixelPaddingValue", None)
    if padding is not None and low <= int(padding) <= high:
        stored[ds.pixel_array == int(padding)] = int(padding)
    return stored


def derived_dataset(ds, hu: np.ndarray, series_uid: str, description: str, derivation: str, path: str = ""):
    """A copy of `ds` holding `hu` as a slice of the new series `series_uid` (see the module docstring)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    out = copy.deepcopy(ds)
    if not getattr(out, "file_meta", None):
        out.file_meta = FileMetaDataset()
    stored = stored_pixels(out, hu, path)
    try:
        out.set_pixel_data(stored, str(out.get("PhotometricInterpretation", "MONOCHROME2")),
                           int(out.get("BitsStored", stored.itemsize * 8)), generate_instance_uid=False)
    except (ValueError, NotImplementedError, AttributeError) as err:
        raise StudyError(f"{path}: cannot write its pixels back ({err})".splitlines()[0]) from None
    for keyword in _STALE:
        out.pop(keyword, None)
    old = ds.get("ImageType", None)
    old = [] if old is None else [old] if isinstance(old, str) else list(old)
    out.ImageType = ["DERIVED", "SECONDARY", *old[2:]]
    source = Dataset()
    source.ReferencedSOPClassUID, source.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    out.SourceImageSequence = [source]
    out.SOPInstanceUID = out.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    out.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    out.SeriesInstanceUID = series_uid
    if ds.get("SeriesNumber", None) not in (None, ""):
        out.SeriesNumber = int(ds.SeriesNumber) + 1000
    out.SeriesDescription = ascii_text(description, 64)
    out.DerivationDescription = ascii_text(derivation, 1024)
    return out


def write_series(datasets: list, hu: np.ndarray, names: list[str], folder: Path, description: str,
                 derivation: str) -> str:
    """One file per slice, `folder/<name>`, all in one new series; returns its SeriesInstanceUID."""
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    for ds, slice_hu, name in zip(datasets, hu, names, strict=True):
        out = derived_dataset(ds, slice_hu, series_uid, description, derivation,
                              path=str(getattr(ds, "filename", None) or name))
        out.save_as(Path(folder) / name, enforce_file_format=True)
    return series_uid
