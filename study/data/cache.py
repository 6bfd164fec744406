"""Prepared arrays shared by all trials, and training patches: random positions, or paper 1's tiles.

Data are prepared once per study into a folder of `.npy` files (memory-mappable) named by the data id, written
to a temporary folder and renamed into place so that a crash never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from study.spec import DataSpec
from study.errors import StudyError
from study.store.ids import short_hash

GENERATOR_VERSION = "pairs-v3"  # v3: phantom label maps and body outlines
SPLITS = ("train", "val", "test")


def data_id(spec: DataSpec) -> str:
    from study.data.mayo import layout_key
    from study.data.sources import input_fingerprint

    fields = spec.model_dump(exclude={"workers", "layout"})
    layout = layout_key(spec)  # None for all but a Mayo layout other than `study`: ids made before data.layout stay
    if layout:
        fields["layout"] = layout
    return short_hash({"data": fields, "generator": GENERATOR_VERSION, "inputs": input_fingerprint(spec)})


@dataclass
class Prepared:
    path: Path
    data_id: str
    sha256: str  # of the array bytes

    def load(self, split: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
        mode = "r" if mmap else None
        return (np.load(self.path / f"{split}_ld.npy", mmap_mode=mode), np.load(self.path / f"{split}_fd.npy", mmap_mode=mode))

    def meta(self, split: str) -> list[dict]:
        return json.loads((self.path / f"{split}_meta.json").read_text())

    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())


class _SplitWriter:
    """Appends slices of one split to raw files, then turns them into .npy arrays (so a split of any size streams)."""

    def __init__(self, folder: Path, split: str):
        self.folder, self.split, self.shape, self.n, self.meta = folder, split, None, 0, []
        self.raw = {k: open(folder / f"{split}_{k}.raw", "wb") for k in ("ld", "fd")}
        self.labels = None  # raw file of uint8 label maps, when the source gives them (phantoms)

    def add(self, ld: np.ndarray, fd: np.ndarray, meta: dict) -> None:
        meta = dict(meta)
        labels = meta.pop("labels", None)
        if self.n and (labels is None) != (self.labels is None):
            raise StudyError(f"{meta.get('image_id')}: label maps given for some {self.split} slices but not others")
        if labels is not None:
            if self.labels is None:
                self.labels = open(self.folder / f"{self.split}_labels.raw", "wb")
            self.labels.write(np.ascontiguousarray(labels, np.uint8).tobytes())
        if self.shape is None:
            self.shape = ld.shape
        if ld.shape != self.shape or fd.shape != self.shape:
            raise StudyError(f"{meta.get('image_id')} (patient {meta.get('patient')}): slice shape {ld.shape} / "
                             f"{fd.shape} differs from {self.shape} of the other {self.split} slices")
        self.raw["ld"].write(np.ascontiguousarray(ld, np.float32).tobytes())
        self.raw["fd"].write(np.ascontiguousarray(fd, np.float32).tobytes())
        self.meta.append(meta)
        self.n += 1

    def close(self, digest) -> None:
        for kind, fh in self.raw.items():
            fh.close()
            raw = self.folder / f"{self.split}_{kind}.raw"
            arr = np.lib.format.open_memmap(self.folder / f"{self.split}_{kind}.npy", mode="w+", dtype=np.float32,
                                            shape=(self.n, *self.shape))
            src = np.memmap(raw, dtype=np.float32, mode="r", shape=(self.n, *self.shape)) if self.n else arr
            for i in range(0, self.n, 64):
                arr[i:i + 64] = src[i:i + 64]
                digest.update(np.ascontiguousarray(arr[i:i + 64]).tobytes())
            arr.flush()
            del arr, src
            raw.unlink()
        if self.labels is not None:
            self.labels.close()
            raw = self.folder / f"{self.split}_labels.raw"
            labels = np.memmap(raw, dtype=np.uint8, mode="r", shape=(self.n, *self.shape))
            np.save(self.folder / f"{self.split}_labels.npy", labels)
            del labels
            raw.unlink()
        (self.folder / f"{self.split}_meta.json").write_text(json.dumps(self.meta))

    def close_files(self) -> None:
        for fh in [*self.raw.values(), *([self.labels] if self.labels else [])]:
            fh.close()


def geometry(spec: DataSpec) -> str:
    sim = (f"low dose simulated at dose fraction {spec.dose_fraction:g} of I0 = {spec.photons:g} photons/ray, "
           f"Gaussian electronic noise σ = {spec.electronic_noise:g} counts; 2-D parallel beam over 180° "
           f"({spec.n_angles or '1.5 × size'} angles), ramp-filtered FBP (scikit-image radon/iradon)")
    if spec.source == "phantom":
        return f"synthetic phantoms {spec.size}² over {spec.fov_mm:g} mm; {sim}"
    if spec.source == "dicom-simulated":
        return f"full-dose DICOM series; {sim}, inserting only the noise missing from a scan at I0"
    return f"{spec.source}: vendor low/full-dose reconstructions (no simulation)"


def build_cache(spec: DataSpec, cache_dir: Path, progress: Optional[Callable[[int, Optional[int]], None]] = None,
                note: Optional[Callable[[str], None]] = print) -> Prepared:
    """Make (or reuse) the study's paired low/full-dose slices, once per study. Deterministic by `spec.seed`.

    Written to a temporary folder and renamed into place: a failure (bad DICOM, missing patient) leaves nothing.
    `note` gets the lines for the console (the Mayo layout used and whether it was detected; by default printed,
    which a rich progress display shows above its bars).
    """
    from study.data.mayo import resolve_layout
    from study.data.sources import SOURCES, count

    did = data_id(spec)
    final = Path(cache_dir) / f"data-{did}"
    layout = resolve_layout(spec) if spec.source == "mayo" else None  # an unknown layout fails before any file
    if layout and note:
        note(layout.line())
    if (final / "manifest.json").is_file():
        return Prepared(final, did, json.loads((final / "manifest.json").read_text())["sha256"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".data-tmp-", dir=cache_dir))
    writers: dict[str, _SplitWriter] = {}
    try:
        total = count(spec)
        done = 0
        for split, ld, fd, meta in SOURCES[spec.source](spec):
            if spec.clip:
                ld, fd = np.clip(ld, spec.hu_min, spec.hu_max), np.clip(fd, spec.hu_min, spec.hu_max)
            if split not in writers:
                writers[split] = _SplitWriter(tmp, split)
            writers[split].add(ld, fd, meta)
            done += 1
            if progress:
                progress(done, total)
        for split in SPLITS:
            if split not in writers or writers[split].n == 0:
                raise StudyError(f"data: no {split} slices were found (source {spec.source!r})")
        digest = hashlib.sha256()
        for split in sorted(writers):
            writers[split].close(digest)
        manifest = {"data_id": did, "sha256": digest.hexdigest(), "spec": spec.model_dump(),
                    "generator": GENERATOR_VERSION, "splits": {k: w.n for k, w in writers.items()},
                    "geometry": geometry(spec), **({"layout": layout.to_dict()} if layout else {})}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        for w in writers.values():
            w.close_files()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Prepared(final, did, json.loads((final / "manifest.json").read_text())["sha256"])


def patch_positions(shape: tuple, batch: int, size: int, rng: np.random.Generator):
    """Slice index and top-left corner of `batch` random patches (the one place patch positions are drawn)."""
    n, h, w = shape
    return rng.integers(0, n, batch), rng.integers(0, h - size + 1, batch), rng.integers(0, w - size + 1, batch)


def cut_patches(ld: np.ndarray, fd: np.ndarray, idx, ys, xs, size: int):
    """The aligned size × size patches at slices `idx`, corners (`ys`, `xs`); two float32 arrays [B, 1, s, s]."""
    a = np.stack([ld[i, y:y + size, x:x + size] for i, y, x in zip(idx, ys, xs)])[:, None]
    b = np.stack([fd[i, y:y + size, x:x + size] for i, y, x in zip(idx, ys, xs)])[:, None]
    return a.astype(np.float32), b.astype(np.float32)


def sample_patches(ld: np.ndarray, fd: np.ndarray, batch: int, size: int, rng: np.random.Generator):
    """`batch` random aligned patches (size × size) from random slices; returns two float32 arrays [B, 1, s, s]."""
    return cut_patches(ld, fd, *patch_positions(ld.shape, batch, size, rng), size)


def tile_corners(length: int, size: int) -> range:
    """Paper 1's tile corners along one axis: `range(0, length − size, size)` (512, 96 → 0, 96, 192, 288, 384). The
    remainder is never used, and neither is a last whole tile ending at the edge (length a multiple of size)."""
    return range(0, length - size, size)


def n_tiles(shape: tuple, size: int) -> int:
    """Tiles of `size` in a stack of slices of `shape` (n, H, W)."""
    n, h, w = shape
    return n * len(tile_corners(h, size)) * len(tile_corners(w, size))


def tile_order(shape: tuple, size: int, seed: int, epoch: int) -> np.ndarray:
    """Every (slice, tile) of a stack of slices of `shape` (n, H, W) once, as rows (slice, y, x), shuffled by a
    permutation fixed by (seed, epoch): a new order each epoch, the same one when an epoch is rerun or resumed."""
    n, h, w = shape
    ys, xs = tile_corners(h, size), tile_corners(w, size)
    if not (n and len(ys) and len(xs)):
        raise StudyError(f"patches: tiled: no {size}² tile fits slices of {h}×{w} (corners range(0, side − "
                         f"{size}, {size})): use a smaller training.patch_size")
    grid = np.stack(np.meshgrid(np.arange(n), np.asarray(ys), np.asarray(xs), indexing="ij"), -1).reshape(-1, 3)
    return grid[np.random.default_rng([seed, epoch]).permutation(len(grid))]


def tiled_steps(spec: DataSpec, patch_size: int, batch_size: int,
                prepared: Optional[Path] = None) -> tuple[Optional[int], str]:
    """Steps per epoch of a tiled pass, ceil(tiles / batch), and where the count comes from: the prepared training
    split where `prepared` (its folder) holds one, else the spec (phantoms: n_train slices of size²); (None, why)
    where only the data can tell (DICOM sources before they are prepared)."""
    if prepared is not None and (prepared / "train_ld.npy").is_file():
        shape = np.load(prepared / "train_ld.npy", mmap_mode="r").shape
        where = "the prepared data"
    elif spec.source == "phantom":
        shape, where = (spec.n_train, spec.size, spec.size), f"the spec: {spec.n_train} phantom slices of {spec.size}²"
    elif spec.source == "mayo" and spec.root and Path(spec.root).is_dir():
        from study.data.mayo import train_shape

        shape = train_shape(spec)
        where = f"the data: {shape[0]} training slices of {shape[1]}×{shape[2]} under {spec.root}"
    else:
        return None, f"from the data ({spec.source} slices are counted when the data are prepared)"
    tiles = n_tiles(shape, patch_size)
    return -(-tiles // batch_size), f"{tiles} tiles of {patch_size}² in batches of {batch_size}, from {where}"
