"""Pretraining a VGG-19 encoder (the "medical" encoder paper 1 used but never published, or stand-ins for the demo).

Methods:
- `supervised`: classification of a labelled folder tree `ROOT/<class>/<image>` (png/jpg/tif/npy/dcm), as
  RadImageNet-style data come; global-average-pooled VGG-19 features → linear head, cross-entropy.
- `rotnet`: self-supervised rotation prediction (Gidaris et al., ICLR 2018) on unlabelled images: each patch is
  rotated by 0/90/180/270° and the network predicts which. Chosen because it needs no labels, works on single
  slices, needs no large batches or negative pairs (unlike SimCLR/MoCo) and trains every VGG layer.
Datasets: a folder (labelled or not), `study-ct` (the study's training slices + the shipped real CT slices) or
`natural` (the photographs scikit-image and scikit-learn ship; no download).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from study.encoders.vgg import FeatureExtractor, vgg19_features
from study.errors import StudyError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy", ".dcm"}
NATURAL_SKIMAGE = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "horse",
                   "brick", "grass", "gravel", "clock", "immunohistochemistry", "hubble_deep_field", "logo")


def _to_unit_gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=-1)
    lo, hi = np.percentile(img, 0.5), np.percentile(img, 99.5)
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def read_image(path: Path) -> np.ndarray:
    """One image as float32 [0, 1] grayscale; DICOM through its HU ([−1024, 3072] → [0, 1], as the study normalises)."""
    try:
        if path.suffix.lower() == ".dcm":
            from study.data.ct import hu_to_unit
            from study.data.dicom import hu_of, read_dataset

            return np.clip(hu_to_unit(hu_of(read_dataset(path), path)), 0, 1).astype(np.float32)
        if path.suffix.lower() == ".npy":
            return _to_unit_gray(np.load(path))
        from skimage.io import imread

        return _to_unit_gray(imread(path))
    except StudyError:
        raise
    except Exception as err:  # noqa: BLE001
        raise StudyError(f"{path}: cannot read image ({type(err).__name__}: {err})".splitlines()[0]) from None


def folder_images(root: Path, labelled: bool) -> tuple[list[np.ndarray], list[int], list[str], str]:
    """Images (and class indices from sub-folder names when `labelled`) and a sha256 of the files read."""
    root = Path(root)
    if not root.is_dir():
        raise StudyError(f"{root}: not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise StudyError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    if labelled and len(classes) < 2:
        raise StudyError(f"{root}: supervised pretraining needs ≥ 2 class folders (<class>/<image>), found {classes}")
    h = hashlib.sha256()
    images, labels = [], []
    for p in files:
        rel = p.relative_to(root)
        if labelled and len(rel.parts) < 2:
            continue
        data = p.read_bytes()
        h.update(str(rel).encode())
        h.update(data)
        images.append(read_image(p))
        labels.append(classes.index(rel.parts[0]) if labelled else 0)
    return images, labels, classes, h.hexdigest()


def natural_images() -> tuple[list[np.ndarray], str]:
    """The photographs that ship inside scikit-image and scikit-learn (a declared dependency, and one of mlflow's, so
    the set, and its sha256, is the same everywhere); none is downloaded."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    images, names = [], []
    for name in NATURAL_SKIMAGE:
        try:
            images.append(_to_unit_gray(getattr(skdata, name)()))
            names.append(f"skimage.{name}")
        except Exception:  # noqa: BLE001 - an image that would need a download is skipped
            continue
    for name, img in zip(("china", "flower"), load_sample_images().images):
        images.append(_to_unit_gray(img))
        names.append(f"sklearn.{name}")
    if len(images) < 4:
        raise StudyError("natural pretraining: fewer than 4 bundled photographs could be loaded")
    return images, images_sha256(images, names)


def _crops(images, labels, rng, batch: int, patch: int):
    idx = rng.integers(0, len(images), batch)
    out = []
    for i in idx:
        im = images[i]
        if im.shape[0] < patch or im.shape[1] < patch:
            from skimage.transform import resize

            im = resize(im, (max(patch, im.shape[0]), max(patch, im.shape[1])), preserve_range=True)
        y, x = rng.integers(0, im.shape[0] - patch + 1), rng.integers(0, im.shape[1] - patch + 1)
        out.append(im[y:y + patch, x:x + patch])
    return np.stack(out).astype(np.float32), np.asarray([labels[i] for i in idx])


def train_classifier(images: list[np.ndarray], *, method: str, labels: Optional[list[int]] = None,
                     n_classes: int = 4, steps: int, batch_size: int, lr: float, patch: int = 32, seed: int = 0,
                     input_mode: str = "x255", progress: Optional[Callable[[int, int], None]] = None,
                     on_step: Optional[Callable[[int, float, float], None]] = None) -> tuple[nn.Sequential, list, list]:
    """VGG-19 features + pooling + a linear head, trained by cross-entropy on random crops (rotation classes for
    rotnet, the labels for supervised). Returns the model (features at [0].features, head at [3]) and the loss and
    accuracy per step."""
    if method not in ("rotnet", "supervised"):
        raise StudyError(f"unknown pretraining method {method!r}; use 'rotnet' or 'supervised'")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    feats = vgg19_features()
    classes = 4 if method == "rotnet" else n_classes
    # the input mapping used later, when the encoder is a loss, so the features it learns are the ones used
    model = nn.Sequential(FeatureExtractor(feats, input_mode).train(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(512, classes))
    for p in feats.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    labels = labels if labels is not None else [0] * len(images)
    losses, accs = [], []
    for step in range(steps):
        x, y = _crops(images, labels, rng, batch_size, patch)
        if method == "rotnet":
            y = rng.integers(0, 4, batch_size)
            x = np.stack([np.rot90(c, int(k)) for c, k in zip(x, y)])
        xt = torch.from_numpy(np.ascontiguousarray(x))[:, None]
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        logits = model(xt)
        loss = nn.functional.cross_entropy(logits, yt)
        if not torch.isfinite(loss):
            raise StudyError(f"pretraining diverged at step {step} (loss {loss.item()}); lower the learning rate")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        accs.append((logits.argmax(1) == yt).float().mean().item())
        if on_step:
            on_step(step, losses[-1], accs[-1])
        if progress:
            progress(step + 1, steps)
    return model, losses, accs


def pretrain(images: list[np.ndarray], *, method: str, steps: int, batch_size: int, lr: float, patch: int = 32,
             seed: int = 0, input_mode: str = "x255", **kw) -> tuple[dict, dict]:
    """Train VGG-19 features (`train_classifier`; the head is dropped) and return (features state_dict, provenance)."""
    t0 = time.time()
    model, losses, accs = train_classifier(images, method=method, steps=steps, batch_size=batch_size, lr=lr,
                                           patch=patch, seed=seed, input_mode=input_mode, **kw)
    classes = model[3].out_features
    tail = max(1, steps // 5)
    meta = {"method": method, "steps": steps, "batch_size": batch_size, "lr": lr, "patch": patch, "seed": seed,
            "input_mode": input_mode, "classes": classes, "seconds": round(time.time() - t0, 2),
            "loss_first": float(np.mean(losses[:tail])), "loss_last": float(np.mean(losses[-tail:])),
            "accuracy_last": float(np.mean(accs[-tail:])), "chance_accuracy": 1.0 / classes}
    return model[0].features.state_dict(), meta


def images_sha256(images: list[np.ndarray], names: Optional[list[str]] = None) -> str:
    """sha256 of a list of images (their bytes, each preceded by its name when given): a pretraining set's id."""
    h = hashlib.sha256()
    for i, im in enumerate(images):
        if names is not None:
            h.update(names[i].encode())
        h.update(im.tobytes())
    return h.hexdigest()
