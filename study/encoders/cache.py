"""Encoder weights of a study: their ids (for run keys) and the files trials load, made once per study.

The id of a weighting is cheap and known before anything is built, so `--dry-run` needs no pretraining:
- a file (a path, or the ImageNet file in the torch hub cache): sha256 of the file's bytes;
- a recipe (`random` with its seed, `rotnet` with its settings and the data id): hash of the recipe.
The materialised file's tensor hash (`weights_id`) is recorded beside it in every trial.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from study.spec import EncoderSpec
from study.errors import StudyError
from study.store.ids import short_hash
from study.store.provenance import file_sha256


def _dataset_id(enc: EncoderSpec, data_id: str) -> str:
    if enc.dataset == "study-ct":
        return f"study-ct:{data_id}"
    if enc.dataset == "natural":
        import skimage

        return f"natural:skimage-{skimage.__version__}"
    from study.data.sources import folder_fingerprint

    return f"folder:{folder_fingerprint(Path(enc.dataset))}" if Path(enc.dataset).is_dir() else "folder:unavailable"


def encoder_key(enc: EncoderSpec, data_id: str, *, allow_missing: bool = False) -> str:
    """Identity of an encoder before it exists: the file's sha for given weights, the recipe (and the data it
    trains on) for weights the study makes. The tensors' own sha256 is recorded once they exist."""
    if enc.source in ("file", "imagenet"):
        from study.encoders.vgg import imagenet_file, require_imagenet_file, vgg19_state

        path = Path(enc.path) if enc.source == "file" else imagenet_file()
        if not path.is_file():
            if allow_missing:
                return f"missing-{enc.source}"
            if enc.source == "imagenet":
                require_imagenet_file()
            raise StudyError(f"encoder weights file not found: {path}")
        if not allow_missing:  # every weights file readable as VGG-19 weights before anything is written
            vgg19_state(str(path))
        return file_sha256(path)[:16]
    if enc.source == "random":
        return short_hash({"source": "random", "seed": enc.seed})
    recipe = enc.model_dump(exclude={"path", "dataset"})
    recipe["dataset"] = _dataset_id(enc, data_id)
    return short_hash(recipe)


def pretraining_images(enc: EncoderSpec, study_ct=None) -> tuple[list, list | None, int, str]:
    """(images in [0, 1], labels or None, number of classes, dataset sha256) for a study-made encoder."""
    from study.encoders.pretrain import folder_images, images_sha256, natural_images

    if enc.dataset == "natural":
        images, digest = natural_images()
        return images, None, 4, digest
    if enc.dataset == "study-ct":
        images = list(study_ct)
        return images, None, 4, images_sha256(images)
    images, labels, classes, digest = folder_images(Path(enc.dataset), labelled=enc.source == "supervised")
    return images, (labels if enc.source == "supervised" else None), max(2, len(classes)), digest


def materialise(name: str, enc: EncoderSpec, key: str, cache_dir: Path, study_ct=None,
                progress: Optional[Callable[[int, int], None]] = None) -> tuple[Path, str]:
    """Path of a loadable weights file for this encoder, and its tensor sha256. Built at most once (cached by key)."""
    from study.encoders.vgg import load_state_dict, resolve_input_mode, save_weights, weights_id

    if enc.source == "file":
        sd, _ = load_state_dict(enc.path)
        return Path(enc.path), weights_id(sd)
    if enc.source == "imagenet":
        sd, meta = load_state_dict("imagenet")
        return Path(meta["path"]), weights_id(sd)
    path = Path(cache_dir) / f"{name}-{key}.pt"
    if not path.is_file():
        if enc.source == "random":
            sd, meta = load_state_dict("random", enc.seed)
        else:
            import torch

            from study.encoders.pretrain import pretrain

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            images, labels, n_classes, digest = pretraining_images(enc, study_ct)
            sd, meta = pretrain(images, method=enc.source, labels=labels, n_classes=n_classes, steps=enc.steps,
                                batch_size=enc.batch_size, lr=enc.lr, patch=enc.patch, seed=enc.seed,
                                input_mode=resolve_input_mode(enc.input, enc.source), progress=progress)
            meta.update({"source": enc.source, "dataset": enc.dataset, "dataset_sha256": digest,
                         "n_images": len(images)})
        meta["encoder_key"] = key
        save_weights(sd, meta, path)
    import torch

    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    return path, meta["weights_id"]
