"""The AAPM-Mayo 2016 data (`data.source: mayo`) in the layouts researchers have (`data.layout`), found under
`data.root` and read as low/full-dose pairs in HU.

- `study`: `<patient>/<dose>_<thickness>[_sharp]/` (`data.template`), the AAPM challenge's per-patient folders;
- `authors`: paper 1's preprocessed arrays, `npy_img/<thickness> <kernel>/<patient>_<slice>_input.npy` and
  `…_target.npy` (study.data.mayo_authors);
- `mayo-dicom`: the DICOM releases as distributed: the AAPM challenge download (`<thickness> <kernel>/[<zip
  folder>/]<dose>_<thickness>[_sharp]/<patient>/<dose>_<thickness>[_sharp]/`, e.g. `1mm B30/full_1mm/L067/full_1mm/`)
  or TCIA's LDCT-and-Projection-data (`<patient>/<study>/<n>-Full Dose Images-<id>/` and `…-Low Dose Images-…/`);
- `auto`: the one of these found under the root (said on the console and recorded in the prepared data's manifest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from study.data.pairs import pairs_from_series
from study.errors import StudyError
from study.spec import DataSpec

KERNEL_SUFFIX = {"B30": "", "D45": "_sharp"}
#: what each layout (mayo-dicom: each release) looks like under the root: for the console, the manifest, the errors
PATTERNS = {
    "study": "<patient>/<dose>_<thickness>[_sharp]/ (data.template)",
    "authors": "npy_img/<thickness> <kernel>/<patient>_<slice>_input.npy and _target.npy",
    "aapm": "<thickness> <kernel>/[<zip folder>/]<dose>_<thickness>[_sharp]/<patient>/<dose>_<thickness>[_sharp]/",
    "tcia": "[LDCT-and-Projection-data/]<patient>/<study>/<n>-Full Dose Images-<id>/ and <n>-Low Dose Images-<id>/",
}
#: which slices share a block (one anatomical position) in each layout
BLOCKS = {
    "study": "by position on the grid of the thickest reconstruction: both kernels and thicknesses of one position",
    "aapm": "by position on the grid of the thickest reconstruction: both kernels and thicknesses of one position",
    "tcia": "by position on the grid of the series' slice thickness",
    "authors": "per (patient, thickness, slice index), both kernels of one thickness merged when they hold the same "
               "slice indices; 1 mm and 3 mm never merged (the arrays carry no position)",
}
NAMES = {"study": "study", "authors": "authors", "aapm": "mayo-dicom", "tcia": "mayo-dicom"}
LABELS = {"study": "study", "authors": "authors", "aapm": "mayo-dicom, AAPM challenge download",
          "tcia": "mayo-dicom, TCIA LDCT-and-Projection-data release"}
_GROUP = re.compile(r"^[13]mm (B30|D45)$")  # `1mm B30` …: the AAPM download's and paper 1's thickness/kernel folders
_DOSE = re.compile(r"^(full|quarter)_[13]mm(_sharp)?$")
_TCIA_SERIES = re.compile(r"(full|low) dose images", re.IGNORECASE)
TCIA_COLLECTION = "LDCT-and-Projection-data"  # the folder a TCIA download puts the patients in


@dataclass(frozen=True)
class Layout:
    variant: str  # a key of PATTERNS: study, authors, aapm (mayo-dicom) or tcia (mayo-dicom)
    detected: bool
    root: str

    @property
    def name(self) -> str:
        return NAMES[self.variant]

    def line(self) -> str:
        how = "detected" if self.detected else "set by data.layout"
        release = f", {LABELS[self.variant].split(', ')[1]}" if self.name == "mayo-dicom" else ""
        return f"data: Mayo layout {self.name!r} ({how}{release}) under {self.root}: {PATTERNS[self.variant]}"

    def to_dict(self) -> dict:
        return {"name": self.name, "detected": self.detected, "release": self.variant, "root": self.root,
                "pattern": PATTERNS[self.variant], "blocks": BLOCKS[self.variant]}


def _dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def authors_base(root: Path) -> Path:
    """The folder holding the `<thickness> <kernel>` folders of paper 1's arrays: root/npy_img, or root itself."""
    return root / "npy_img" if (root / "npy_img").is_dir() else root


def _has_npy(folder: Path) -> bool:
    return any(p.name.endswith(("_input.npy", "_target.npy")) for p in folder.iterdir())


def _looks_authors(root: Path, spec: DataSpec) -> bool:
    return (root / "npy_img").is_dir() or any(_GROUP.match(d.name) and _has_npy(d) for d in _dirs(root))


def _looks_study(root: Path, spec: DataSpec) -> bool:
    if any(_DOSE.match(d.name) for p in _dirs(root) if not _GROUP.match(p.name) for d in _dirs(p)):
        return True
    return any((root / spec.template.format(patient=pid, dose=dose, thickness=th, kernel=KERNEL_SUFFIX[ker])).is_dir()
               for ids in spec.patient_splits().values() for pid in ids for dose in ("quarter", "full")
               for th in spec.thickness for ker in spec.kernel)


def _looks_aapm(root: Path, spec: DataSpec) -> bool:
    return any(_GROUP.match(d.name) and not _has_npy(d) and _dirs(d) for d in _dirs(root))


def tcia_base(root: Path) -> Path:
    return root / TCIA_COLLECTION if (root / TCIA_COLLECTION).is_dir() else root


def _looks_tcia(root: Path, spec: DataSpec) -> bool:
    return any(_TCIA_SERIES.search(s.name) for p in _dirs(tcia_base(root)) for st in _dirs(p) for s in _dirs(st))


_DETECT = {"authors": _looks_authors, "study": _looks_study, "aapm": _looks_aapm, "tcia": _looks_tcia}


def _looked_for() -> str:
    return "; ".join(f"{LABELS[v]}: {p}" for v, p in PATTERNS.items())


def resolve_layout(spec: DataSpec) -> Layout:
    """The layout of the Mayo data under `spec.root`: the one `data.layout` names, or the one found there (`auto`).
    Nothing found, or several, is a one-line error naming the root and what was looked for."""
    root = Path(spec.root)
    if spec.layout in ("study", "authors"):
        return Layout(spec.layout, False, str(root))
    if not root.is_dir():
        raise StudyError(f"data.root {root}: not a folder (data.source mayo, layout {spec.layout})")
    tests = {"aapm": _looks_aapm, "tcia": _looks_tcia} if spec.layout == "mayo-dicom" else _DETECT
    found = [v for v, test in tests.items() if test(root, spec)]
    if spec.layout == "mayo-dicom" and len(found) != 1:
        raise StudyError(f"data.layout mayo-dicom: under {root} found {' and '.join(found) or 'neither'} of the AAPM "
                         f"download ({PATTERNS['aapm']}) and TCIA's ({PATTERNS['tcia']})")
    if not found:
        raise StudyError(f"data.root {root}: no Mayo layout found (looked for {_looked_for()})")
    if len(found) > 1:
        raise StudyError(f"data.root {root}: several Mayo layouts found ({', '.join(PATTERNS[v] for v in found)}): "
                         f"set data.layout to the one to use")
    return Layout(found[0], spec.layout == "auto", str(root))


def layout_key(spec: DataSpec) -> Optional[str]:
    """The layout as part of the data id: None for today's `study` layout (and for other sources), so that a spec
    without `data.layout` keeps the data id it had before the field existed."""
    if spec.source != "mayo":
        return None
    try:
        name = resolve_layout(spec).name
    except StudyError:
        return None  # preparing the data says what is wrong
    return None if name == "study" else name


# -- DICOM layouts: (split, patient, tag, low folder, full folder), every folder checked to exist ------------------

def mayo_folders(spec: DataSpec) -> list[tuple[str, str, str, Path, Path]]:
    """`study`: (split, patient, tag, low folder, full folder) for every patient × thickness × kernel."""
    root = Path(spec.root)
    out = []
    for split, patients in spec.patient_splits().items():
        for pid in patients:
            if not (root / pid).is_dir():
                raise StudyError(f"data.splits: patient {pid!r} ({split}) not found under {root}")
            for th in spec.thickness:
                for ker in spec.kernel:
                    fmt = dict(patient=pid, thickness=th, kernel=KERNEL_SUFFIX[ker])
                    low, full = (root / spec.template.format(dose=d, **fmt) for d in ("quarter", "full"))
                    for f in (low, full):
                        if not f.is_dir():
                            raise StudyError(f"patient {pid}: folder {f} not found (data.template "
                                             f"{spec.template!r}, thickness {th}, kernel {ker})")
                    out.append((split, pid, f"{th}-{ker}", low, full))
    return out


def _aapm_series(root: Path, split: str, pid: str, th: str, ker: str, dose: str) -> Path:
    name, group = f"{dose}_{th}{KERNEL_SUFFIX[ker]}", root / f"{th} {ker}"
    hits = sorted({p for p in (group / name / pid / name, *group.glob(f"*/{name}/{pid}/{name}")) if p.is_dir()})
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise StudyError(f"patient {pid}: several {th} {ker} {dose}-dose folders ({hits[0]}, {hits[1]}): keep one")
    groups = [g for g in _dirs(root) if _GROUP.match(g.name)]
    if not any(next(g.glob(pat), None) for g in groups for pat in (f"*/{pid}", f"*/*/{pid}")):
        raise StudyError(f"data.splits: patient {pid!r} ({split}) not found under {root} (mayo-dicom, AAPM download: "
                         f"{PATTERNS['aapm']})")
    raise StudyError(f"patient {pid}: folder {group}/[<zip folder>/]{name}/{pid}/{name}/ not found (mayo-dicom, AAPM "
                     f"download; thickness {th}, kernel {ker})")


def aapm_folders(spec: DataSpec) -> list[tuple[str, str, str, Path, Path]]:
    """`mayo-dicom`, the AAPM challenge download: one pair of series per patient × thickness × kernel."""
    root = Path(spec.root)
    return [(split, pid, f"{th}-{ker}", *(_aapm_series(root, split, pid, th, ker, d) for d in ("quarter", "full")))
            for split, patients in spec.patient_splits().items() for pid in patients
            for th in spec.thickness for ker in spec.kernel]


def _tcia_series(pdir: Path, pid: str) -> tuple[Path, Path]:
    series = [s for st in _dirs(pdir) for s in _dirs(st) if _TCIA_SERIES.search(s.name)]
    out = []
    for dose in ("low", "full"):
        hits = [s for s in series if _TCIA_SERIES.search(s.name)[1].lower() == dose]
        if not hits:
            raise StudyError(f"patient {pid}: no '<n>-{dose.title()} Dose Images-<id>' series folder in "
                             f"{pdir}/<study>/")
        if len(hits) > 1:
            raise StudyError(f"patient {pid}: several {dose}-dose image series ({hits[0]}, {hits[1]}): keep one")
        out.append(hits[0])
    return out[0], out[1]


def tcia_folders(spec: DataSpec) -> list[tuple[str, str, str, Path, Path]]:
    """`mayo-dicom`, TCIA's release: its one low/full-dose image series per patient (thickness and kernel as
    released: data.thickness and data.kernel do not choose among them); projection series are not read."""
    base = tcia_base(Path(spec.root))
    out = []
    for split, patients in spec.patient_splits().items():
        for pid in patients:
            if not (base / pid).is_dir():
                raise StudyError(f"data.splits: patient {pid!r} ({split}) not found under {base} (mayo-dicom, TCIA "
                                 f"release: {PATTERNS['tcia']})")
            out.append((split, pid, "images", *_tcia_series(base / pid, pid)))
    return out


FOLDERS = {"study": mayo_folders, "aapm": aapm_folders, "tcia": tcia_folders}


def mayo(spec: DataSpec):
    """(split, low HU, full HU, meta) of every slice of the split's patients, in the layout under the root."""
    layout = resolve_layout(spec)
    if layout.variant == "authors":
        from study.data.mayo_authors import authors_pairs

        yield from authors_pairs(spec, authors_base(Path(spec.root)))
        return
    grid = None if layout.variant == "tcia" else max(float(t.removesuffix("mm")) for t in spec.thickness)
    for split, _pid, tag, low, full in FOLDERS[layout.variant](spec):
        yield from pairs_from_series(split, low, full, spec, tag, grid)


def train_shape(spec: DataSpec) -> tuple[int, int, int]:
    """(training slices, rows, columns) of the Mayo data under the root, counted without reading any pixel data:
    files listed, one header (or one .npy header) read. For the dry run's tiled steps per epoch."""
    train = set(spec.patient_splits()["train"])
    layout = resolve_layout(spec)
    if layout.variant == "authors":
        from study.data.mayo_authors import index_folder

        base = authors_base(Path(spec.root))
        files = [s["target"] for th in spec.thickness for ker in spec.kernel
                 for pid, slices in index_folder(base / f"{th} {ker}", th, ker).items() if pid in train
                 for s in slices.values()]
        rows, cols = np.load(files[0], mmap_mode="r").shape[-2:] if files else (0, 0)
        return len(files), int(rows), int(cols)
    import pydicom

    files = [f for split, _pid, _tag, _low, full in FOLDERS[layout.variant](spec) if split == "train"
             for f in sorted(full.iterdir()) if f.is_file()]
    if not files:
        return 0, 0, 0
    head = pydicom.dcmread(files[0], stop_before_pixels=True)
    return len(files), int(head.Rows), int(head.Columns)
