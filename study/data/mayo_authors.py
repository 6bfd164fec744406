"""Paper 1's preprocessed Mayo arrays (`data.layout: authors`):
`npy_img/<thickness> <kernel>/<patient>_<slice>_input.npy` (quarter dose) and `…_target.npy` (full dose), one 2-D
slice per file, stored as (HU + 1024)/4096. The names and the normalisation are those of RED-CNN's `prep.py`, where
a series' slices are sorted by position and numbered from 0, and no position is kept. The arrays are converted back
to HU (HU = x·4096 − 1024) so that the rest of the pipeline sees HU as from every source.

Blocks: without positions, a block is one (patient, thickness, slice index); the kernels of one thickness are merged
into it when every kernel holds the same slice indices for the patient (B30 and D45 are reconstructions of the same
positions); 1 mm and 3 mm slices are never merged, as no slice-index mapping between them can be checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from study.data.pairs import subsample
from study.errors import StudyError
from study.spec import DataSpec

_FILE = re.compile(r"^(?P<patient>.+)_(?P<slice>\d+)_(?P<io>input|target)\.npy$")
HU_OFFSET, HU_SPAN = -1024.0, 4096.0  # paper 1's normalisation, whatever the spec's hu_min/hu_max
_PARTNER = {"input": "target", "target": "input"}


def to_hu(x: np.ndarray) -> np.ndarray:
    """(HU + 1024)/4096 → HU, in float64 (exact for the integer HU the Mayo images hold), returned as float32."""
    return (np.asarray(x, np.float64) * HU_SPAN + HU_OFFSET).astype(np.float32)


def index_folder(folder: Path, th: str, ker: str) -> dict[str, dict[int, dict[str, Path]]]:
    """patient → slice index → {'input': path, 'target': path} of one `<thickness> <kernel>` folder; a file without
    its partner, an empty folder or two files for one slice are one-line errors naming them."""
    if not folder.is_dir():
        raise StudyError(f"data.layout authors: folder {folder} not found (thickness {th}, kernel {ker})")
    found: dict[str, dict[int, dict[str, Path]]] = {}
    for path in sorted(folder.iterdir()):
        m = _FILE.match(path.name)
        if not (m and path.is_file()):
            continue
        files = found.setdefault(m["patient"], {}).setdefault(int(m["slice"]), {})
        if m["io"] in files:
            raise StudyError(f"{folder}: two {m['io']} files for slice {int(m['slice'])} of patient {m['patient']} "
                             f"({files[m['io']].name}, {path.name})")
        files[m["io"]] = path
    if not found:
        raise StudyError(f"{folder}: empty folder, no <patient>_<slice>_input.npy / _target.npy files")
    for slices in found.values():
        for files in slices.values():
            if len(files) == 1:
                (io, path), = files.items()
                partner = path.name.removesuffix(f"_{io}.npy") + f"_{_PARTNER[io]}.npy"
                raise StudyError(f"{path}: no partner {partner} (input = quarter dose, target = full dose)")
    return found


def _load(path: Path) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - truncated or foreign files raise many kinds
        raise StudyError(f"{path}: unreadable .npy ({type(err).__name__}: {err})".splitlines()[0]) from None
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise StudyError(f"{path}: expected one 2-D slice, got an array of shape {x.shape} ({x.dtype})")
    peak = float(np.abs(x).max()) if x.size else 0.0
    if not np.isfinite(peak) or peak > 16:
        raise StudyError(f"{path}: values up to {peak:g}: not paper 1's (HU + 1024)/4096 arrays (data.layout authors)")
    return to_hu(x)


def _series(split: str, pid: str, th: str, ker: str, slices: dict[int, dict[str, Path]], spec: DataSpec,
            merged: bool):
    order = sorted(slices)
    tag = f"{th}-{ker}"
    for k in subsample(len(order), spec):
        s = order[k]
        ld, fd = _load(slices[s]["input"]), _load(slices[s]["target"])
        if ld.shape != fd.shape:
            raise StudyError(f"{slices[s]['input']}: shape {ld.shape} differs from {fd.shape} of its target")
        yield split, ld, fd, {"image_id": f"{pid}-{tag}-{s:04d}", "patient": pid,
                              "block": f"{pid}@{th}#{s}" if merged else f"{pid}@{tag}#{s}",
                              "position_mm": s * float(th.removesuffix("mm")), "series": tag}


def authors_pairs(spec: DataSpec, base: Path):
    """(split, low HU, full HU, meta) per slice of the split's patients; every folder is indexed and every patient
    checked before any array is read."""
    groups = {(th, ker): index_folder(base / f"{th} {ker}", th, ker) for th in spec.thickness for ker in spec.kernel}
    splits = spec.patient_splits()
    for split, patients in splits.items():
        for pid in patients:
            for (th, ker), found in groups.items():
                if pid not in found:
                    raise StudyError(f"data.splits: patient {pid!r} ({split}) has no slices in {base / f'{th} {ker}'}")
    for split, patients in splits.items():
        for pid in patients:
            for th in spec.thickness:
                merged = len({tuple(sorted(groups[th, ker][pid])) for ker in spec.kernel}) == 1
                for ker in spec.kernel:
                    yield from _series(split, pid, th, ker, groups[th, ker][pid], spec, merged)
