"""Encoder weights of a study: their ids (for run keys) and the files trials load, made once per study.

The id of a weighting is cheap and known before anything is built, so `--dry-run` needs no pretraining:
- a file (a path, or the ImageNet file in the torch hub cache): sha256 of the file's bytes;
- a recipe (`random` with its seed, `rotnet` with its settings and the data id): hash of the recipe.
The materialised file's tensor hash (`weights_id`) is recorded beside it in every trial.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Optional

from study.config import EncoderSpec
from study.errors import StudyError
from study.grid import short_hash


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def encoder_key(enc: EncoderSpec, data_id: str, *, allow_missing: bool = False) -> str:
    if enc.source in ("file", "imagenet"):
        from study.encoders import imagenet_file, require_imagenet_file

        path = Path(enc.path) if enc.source == "file" else imagenet_file()
        if not path.is_file():
            if allow_missing:
                return f"missing-{enc.source}"
            if enc.source == "imagenet":
                require_imagenet_file()
            raise StudyError(f"encoder weights file not found: {path}")
        return _file_sha(path)[:16]
    recipe = enc.model_dump(exclude={"path", "input"})
    if enc.source == "rotnet":
        recipe["data_id"] = data_id
    else:
        recipe = {"source": "random", "seed": enc.seed}
    return short_hash(recipe)


def materialise(name: str, enc: EncoderSpec, key: str, cache_dir: Path, train_images=None,
                progress: Optional[Callable[[int, int], None]] = None) -> tuple[Path, str]:
    """Path of a loadable weights file for this encoder, and its tensor sha256. Built at most once (cached by key)."""
    from study.encoders import load_state_dict, pretrain_rotnet, save_weights, weights_id

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

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            from study.encoders import resolve_input_mode

            sd, meta = pretrain_rotnet(train_images, steps=enc.steps, batch_size=enc.batch_size, lr=enc.lr, seed=enc.seed,
                                       input_mode=resolve_input_mode(enc.input, "rotnet"), progress=progress)
        meta["encoder_key"] = key
        save_weights(sd, meta, path)
    import torch

    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    return path, meta["weights_id"]
