"""`study denoise` without the command line: choose the trial, read the scan, check it fits the network, predict in
HU, and write the result into a staging folder beside OUTPUT that is renamed into place at the end (an error leaves
nothing half written; an OUTPUT that holds files is refused unless `overwrite`, and then replaced as a whole)."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from study.apply.scan import Scan, read_scan
from study.apply.select import Choice, choose, load_trial_model
from study.errors import StudyError


@dataclass
class Result:
    choice: Choice
    meta: dict  # the model file's metadata (model_spec, hu_range, epoch, study, source)
    slices: int
    output: Path
    what: str  # the input, e.g. "DICOM series 1.2.3"


def device_of(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise StudyError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    return torch.device(name)


def min_size(model_spec: dict) -> int:
    """The smallest slice side the network takes: the U-Net's reflect padding to 2^(levels−1) needs at least that
    much, RED-CNN's five unpadded 5×5 convolutions take 20 pixels off each side."""
    if model_spec.get("name") == "redcnn":
        return 21
    return 2 ** (int(model_spec.get("levels", 5)) - 1)


def check_output(output: Path, source: Path, overwrite: bool) -> None:
    output, source = Path(output), Path(source)
    if not source.exists():
        raise StudyError(f"{source}: no such file or folder")
    if output.exists() and not output.is_dir():
        raise StudyError(f"{output}: exists and is not a folder; -o needs a new or empty folder")
    out, src = output.resolve(), source.resolve()
    if out == src or out in src.parents:
        raise StudyError(f"{output}: is (or holds) the input {source}; write the result elsewhere")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        n = sum(1 for _ in output.iterdir())
        raise StudyError(f"{output}: not empty ({n} entries); choose a new folder or pass --overwrite")


@contextmanager
def staged(output: Path):
    """A new folder beside `output` to write into; renamed to `output` (replacing it) when the block ends
    without error, removed when it raises."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial-{uuid.uuid4().hex[:12]}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:12]}") if output.exists() else None
    if old is not None:
        os.replace(output, old)
    os.replace(tmp, output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def predict_hu(model, hu: np.ndarray, hu_range, device, progress: Optional[Callable[[int, int], None]] = None,
               block: int = 8) -> np.ndarray:
    """The network's output in HU for every slice, `block` slices at a time (progress(done, total) after each)."""
    from study.trial.evaluate import predict

    out = []
    if progress:
        progress(0, len(hu))
    for i in range(0, len(hu), block):
        out.append(predict(model, hu[i:i + block], tuple(hu_range), device))
        if progress:
            progress(min(i + block, len(hu)), len(hu))
    return np.concatenate(out).astype(np.float32)


def derivation(meta: dict, scan: Scan) -> str:
    spec = meta["model_spec"]
    lo, hi = meta["hu_range"]
    model = f"{spec.get('name')} channels {spec.get('channels')}" + (
        f" levels {spec.get('levels')}" if spec.get("name") == "unet" else "")
    return (f"Denoised by `study denoise` with the network of trial {meta['run_key']} of study {meta.get('study')} "
            f"(configuration {meta['configuration']}, seed {meta['seed']}, selected epoch {meta['epoch']}; {model}; "
            f"network input HU range {lo:g} to {hi:g}) from {scan.what}.")


def write_npy(scan: Scan, hu: np.ndarray, folder: Path) -> None:
    """The `.npy` files of the input, same names and shapes, HU as float32."""
    start = 0
    for name, shape in zip(scan.names, scan.shapes, strict=True):
        n = int(np.prod(shape[:-2], dtype=np.int64))
        np.save(folder / name, hu[start:start + n].reshape(shape).astype(np.float32))
        start += n


def denoise(results_dir: Path, source: Path, output: Path, *, run_key=None, configuration=None, seed=None,
            best=None, device: str = "auto", overwrite: bool = False, say: Callable[[str], None] = print,
            progress: Optional[Callable[[int, int], None]] = None) -> Result:
    """Apply the chosen trial's network to the scan at `source` and write the result to `output`."""
    from study.apply.dicom_out import series_description, write_series

    check_output(output, source, overwrite)
    dev = device_of(device)
    choice = choose(results_dir, run_key=run_key, configuration=configuration, seed=seed, best=best)
    say(f"model: {choice.configuration} · seed {choice.seed} · run key {choice.run_key} ({choice.reason})")
    scan = read_scan(source)
    model, meta = load_trial_model(choice, dev)
    need, (h, w) = min_size(meta["model_spec"]), scan.hu.shape[1:]
    if min(h, w) < need:
        raise StudyError(f"{source}: slices are {h}×{w}, smaller than the {need}×{need} the network "
                         f"({meta['model_spec'].get('name')}) needs")
    hu = predict_hu(model, scan.hu, meta["hu_range"], dev, progress)
    with staged(output) as tmp:
        if scan.is_dicom:
            write_series(scan.datasets, hu, scan.names, tmp,
                         series_description(choice.run_key, choice.configuration), derivation(meta, scan))
        else:
            write_npy(scan, hu, tmp)
    return Result(choice, meta, len(hu), Path(output), scan.what)
