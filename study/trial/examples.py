"""The example slices a trial keeps for the report's side-by-side figure (analysis.examples_figure).

Which slices (`choose`): a pure function of the test set and the metric window, never of the network, so every
trial of a study shows the same slices. Each slice gets a score: where the data have label maps (phantoms), its
number of lesion pixels (label ≥ 2), then its number of reference pixels inside the metric window [low, high]
(soft tissue); without label maps, the soft-tissue count alone. Slices are taken best score first (ties: lower
index), spread out: first only slices of patients not yet shown, then only slices not within `SPREAD` slices of a
chosen one of the same patient (nor sharing its block), then any.

Where to zoom (`zoom_box`), per slice: a square (y0, x0, size) of about a quarter of the image side, centred on the
largest lesion (grown to 1.5 × its extent if it is larger; rule "lesion"); on a slice without lesions, the square
with the highest gradient energy of the reference clipped to the window (rule "edges").

`examples.npz` (`write_npz`, `read_npz`): image_ids, low, output, reference (int16 HU), zoom (n × 3), rule,
window ([low, high]), window_label, choice ("lesions" or "soft tissue"). The images are rounded to whole HU: a 1-HU
step is far below what a display window resolves (400 HU over 256 grey levels is ~1.6 HU a level) and int16 halves
the file against float32.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPREAD = 10  # slices of one patient closer than this (in test-set order) count as the same anatomy


@dataclass
class Examples:
    """A trial's example slices: image_id → (low dose, output, full dose) in HU, in choice order; zoom boxes and
    their rules per image_id; how the slices were chosen."""

    images: dict = field(default_factory=dict)
    zoom: dict = field(default_factory=dict)
    rule: dict = field(default_factory=dict)
    choice: str = ""

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Choice:
    indices: list
    zoom: list
    rule: list
    choice: str


def scores(data: Path, name: str, bounds) -> tuple[np.ndarray, str]:
    """Per slice of test set `name`: (lesion pixels, soft-tissue pixels) as one sortable score, and the rule."""
    low, high = bounds
    fd = np.load(data / f"{name}_fd.npy", mmap_mode="r")
    tissue = np.concatenate([((c >= low) & (c <= high)).sum(axis=(1, 2)) for c in
                             (np.asarray(fd[i:i + 16]) for i in range(0, len(fd), 16))]) if len(fd) else np.zeros(0)
    labels_path = data / f"{name}_labels.npy"
    if not labels_path.is_file():
        return tissue.astype(np.float64), "soft tissue"
    labels = np.load(labels_path, mmap_mode="r")
    lesion = np.array([(np.asarray(labels[i]) >= 2).sum() for i in range(len(labels))])
    return lesion * float(fd.shape[1] * fd.shape[2] + 1) + tissue, "lesions"


def spread_order(score: np.ndarray, metas: list[dict], n: int) -> list[int]:
    """`n` indices, best score first (ties: lower index), spread over patients and positions (module docstring)."""
    ranked = sorted(range(len(score)), key=lambda i: (-score[i], i))
    chosen: list[int] = []

    def near(i, j):
        same = metas[i].get("patient") == metas[j].get("patient")
        return metas[i].get("block") == metas[j].get("block") or (same and abs(i - j) < SPREAD)

    passes = (lambda i: all(metas[i].get("patient") != metas[j].get("patient") for j in chosen),
              lambda i: not any(near(i, j) for j in chosen), lambda i: True)
    for ok in passes:
        for i in ranked:
            if len(chosen) < n and i not in chosen and ok(i):
                chosen.append(i)
    return chosen


def zoom_box(reference: np.ndarray, labels: np.ndarray | None, bounds) -> tuple[tuple[int, int, int], str]:
    """(y0, x0, size) and its rule ("lesion" or "edges") for one slice (module docstring)."""
    h, w = reference.shape
    size = max(8, min(h, w) // 4)
    if labels is not None and (labels >= 2).any():
        ids, counts = np.unique(labels[labels >= 2], return_counts=True)
        ys, xs = np.nonzero(labels == ids[np.argmax(counts)])
        extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        size = min(max(size, int(np.ceil(1.5 * extent))), h, w)
        cy, cx = (ys.min() + ys.max() + 1) // 2, (xs.min() + xs.max() + 1) // 2
        return (int(np.clip(cy - size // 2, 0, h - size)), int(np.clip(cx - size // 2, 0, w - size)), size), "lesion"
    size = min(size, h, w)
    r = np.clip(np.asarray(reference, np.float64), *bounds)
    gy, gx = np.gradient(r)
    sat = np.pad((gy ** 2 + gx ** 2).cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
    energy = sat[size:, size:] - sat[:-size, size:] - sat[size:, :-size] + sat[:-size, :-size]
    y0, x0 = np.unravel_index(int(np.argmax(energy)), energy.shape)
    return (int(y0), int(x0), size), "edges"


def choose(data: Path, name: str, bounds, n: int, metas: list[dict]) -> Choice:
    """The `n` example slices of test set `name` (indices in choice order) with their zoom boxes and rules."""
    if n <= 0:
        return Choice([], [], [], "")
    score, how = scores(data, name, bounds)
    indices = spread_order(score, metas, n)
    fd = np.load(data / f"{name}_fd.npy", mmap_mode="r")
    labels_path = data / f"{name}_labels.npy"
    labels = np.load(labels_path, mmap_mode="r") if labels_path.is_file() else None
    boxes = [zoom_box(np.asarray(fd[i]), None if labels is None else np.asarray(labels[i]), bounds) for i in indices]
    return Choice(indices, [b for b, _ in boxes], [r for _, r in boxes], how)


def _hu16(images) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images, np.float64)), -32768, 32767).astype(np.int16)


def write_npz(path: Path, examples: Examples, window) -> None:
    """`examples.npz` (module docstring), written to a temporary name in the same folder and renamed into place."""
    ids = list(examples.images)
    stack = lambda k: _hu16([examples.images[i][k] for i in ids])  # noqa: E731
    arrays = {"image_ids": np.array(ids, dtype=str), "low": stack(0), "output": stack(1), "reference": stack(2),
              "zoom": np.array([examples.zoom[i] for i in ids], np.int32).reshape(len(ids), 3),
              "rule": np.array([examples.rule[i] for i in ids], dtype=str),
              "window": np.array(window.bounds, np.float64), "window_label": np.array(window.label),
              "choice": np.array(examples.choice)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz(path: Path) -> dict:
    """An `examples.npz` as plain data: lists of ids, rules and zoom tuples, float32 HU arrays, the window."""
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    return {"image_ids": [str(i) for i in out["image_ids"]], "low": out["low"].astype(np.float32),
            "output": out["output"].astype(np.float32), "reference": out["reference"].astype(np.float32),
            "zoom": [tuple(int(v) for v in b) for b in out["zoom"]], "rule": [str(r) for r in out["rule"]],
            "window": tuple(float(v) for v in out["window"]), "window_label": str(out["window_label"]),
            "choice": str(out["choice"])}

