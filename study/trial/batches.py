"""A trial's data: the prepared splits (memory-mapped), training patches on the network's [0, 1] scale (random ones,
or an epoch of paper 1's tiles), the training split on the accelerator where it fits, and the output-bias start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from study.data.cache import cut_patches, patch_positions, tile_order
from study.data.ct import hu_to_unit
from study.trial.evaluate import geometry


@dataclass
class Splits:
    """Training pairs (memory-mapped, HU), the evenly spaced validation slices with their phantom geometry, and the
    names of the test sets there are (`test`, and `real` where the data have it)."""

    train_ld: np.ndarray
    train_fd: np.ndarray
    val_ld: np.ndarray
    val_fd: np.ndarray
    val_geometry: list
    test_sets: list[str]


def load_splits(data_path: str, val_slices) -> Splits:
    data = Path(data_path)
    train_ld, train_fd = np.load(data / "train_ld.npy", mmap_mode="r"), np.load(data / "train_fd.npy", mmap_mode="r")
    val_ld, val_fd = np.load(data / "val_ld.npy", mmap_mode="r"), np.load(data / "val_fd.npy", mmap_mode="r")
    n = min(len(val_ld), int(val_slices or len(val_ld)))  # val_slices None: all of them
    keep = np.unique(np.linspace(0, len(val_ld) - 1, n).astype(int))
    val_geo = geometry(data, "val")
    val_geometry = [val_geo(i) for i in keep]
    test_sets = [name for name in ("test", "real") if (data / f"{name}_ld.npy").is_file()]
    return Splits(train_ld, train_fd, np.asarray(val_ld[keep]), np.asarray(val_fd[keep]), val_geometry, test_sets)


def unit_patches(ld, fd, idx, ys, xs, patch_size: int, hu_range, device="cpu"):
    """The aligned (low-dose, full-dose) patches at slices `idx`, corners (`ys`, `xs`), on the network's [0, 1] scale.
    `ld`, `fd` are arrays in HU, or tensors already in [0, 1] on the device (`device_split`): then the patches are
    cut there and nothing crosses the bus."""
    if isinstance(ld, torch.Tensor):
        cut = lambda t: torch.stack([t[i, y:y + patch_size, x:x + patch_size] for i, y, x in zip(idx, ys, xs)])[:, None]
        return cut(ld), cut(fd)
    a, b = cut_patches(ld, fd, idx, ys, xs, patch_size)
    return torch.from_numpy(hu_to_unit(a, *hu_range)).to(device), torch.from_numpy(hu_to_unit(b, *hu_range)).to(device)


def unit_batch(ld, fd, batch_size: int, patch_size: int, hu_range, generator, device="cpu"):
    """A random batch of aligned patches (`unit_patches`; same positions from the same generator on host or device)."""
    idx, ys, xs = patch_positions(tuple(ld.shape), batch_size, patch_size, generator)
    return unit_patches(ld, fd, idx, ys, xs, patch_size, hu_range, device)


def tiled_batches(ld, fd, batch_size: int, patch_size: int, hu_range, seed: int, epoch: int, device="cpu"):
    """Epoch `epoch` of paper 1's tiled pass: every tile of every slice once (`study.data.cache.tile_order`, shuffled
    by seed and epoch), in batches of `batch_size`, the last one short."""
    order = tile_order(tuple(ld.shape), patch_size, seed, epoch)
    for i in range(0, len(order), batch_size):
        b = order[i:i + batch_size]
        yield unit_patches(ld, fd, b[:, 0], b[:, 1], b[:, 2], patch_size, hu_range, device)


def device_split(ld, fd, hu_range, device, max_bytes: int = 2 << 30):
    """The training split on the accelerator once per trial, in [0, 1] (None on CPU, where the memory-mapped cache
    is already shared through the page cache, or when it is larger than `max_bytes`)."""
    if device.type != "cuda" or 2 * ld.size * 4 > max_bytes:
        return None
    to = lambda a: torch.from_numpy(hu_to_unit(np.asarray(a, np.float32), *hu_range)).to(device)
    return to(ld), to(fd)


def init_output(model, train_fd, hu_range) -> None:
    """Start the model's output at the training targets' mean (models that support it), from ≤ ~64 slices so a
    memory-mapped split is never read whole."""
    if hasattr(model, "init_output_bias"):
        sample = train_fd[:: max(1, len(train_fd) // 64)]
        model.init_output_bias(float(np.mean(hu_to_unit(np.asarray(sample, np.float64), *hu_range))))
