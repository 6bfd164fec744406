"""Low/full-dose pairs from two DICOM series, and the slice bookkeeping every DICOM source shares: which slices are
used (`subsample`) and which anatomical position a slice belongs to (`block`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from study.spec import DataSpec


def block(patient: str, z: float, grid_mm: float = 3.0) -> str:
    """Positions on a common grid (the thickest reconstruction) so that all reconstructions of one position match."""
    return f"{patient}@{round(z / grid_mm) * grid_mm:.0f}mm"


def subsample(n: int, spec: DataSpec) -> list[int]:
    """Indices of the slices used out of `n`: every `slice_step`-th, at most `max_slices`."""
    idx = list(range(0, n, spec.slice_step))
    return idx[: spec.max_slices] if spec.max_slices else idx


def pairs_from_series(split: str, low_dir: Path, full_dir: Path, spec: DataSpec, tag: str,
                      grid_mm: Optional[float] = None):
    """(split, low HU, full HU, meta) for the slices of two series paired by position; blocks on `grid_mm` (default:
    the series' own slice thickness)."""
    from study.data.dicom import pair_slices, read_series

    low, lmeta = read_series(low_dir)
    full, fmeta = read_series(full_dir)
    pairs = pair_slices(lmeta, fmeta)
    grid = grid_mm or float(lmeta.slice_thickness or 1.0)
    for n, k in enumerate(subsample(len(pairs), spec)):
        i, j = pairs[k]
        z = lmeta.positions[i]
        yield split, low[i], full[j], {"image_id": f"{lmeta.patient}-{tag}-{n:04d}", "patient": lmeta.patient,
                                       "block": block(lmeta.patient, z, grid), "position_mm": float(z), "series": tag}
