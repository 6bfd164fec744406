"""Frozen VGG-19 feature extractors at a named layer, their weight sources, ids, and a small pretraining.

Weights:
- ``"imagenet"``: torchvision's `VGG19_Weights.IMAGENET1K_V1`, read from the torch hub cache
  (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``). Never downloaded here: a missing file is a one-line error
  that says where to put it.
- ``"random"``: torchvision's initialisation under a fixed seed.
- a path: a torchvision-format VGG-19 state_dict (full model ``features.N.*`` or features-only ``N.*``), or a
  file written by this module (``{"state_dict", "meta"}``).
Each weight set has an id: the sha256 of its tensors (names, shapes, bytes), which goes into run keys and MLflow.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from study.errors import StudyError
from study.encoders.layers import LAYER_END, layer_end

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_MODES = ("unit", "x255", "imagenet")


def vgg19_features() -> nn.Sequential:
    """Untrained VGG-19 `features` (torchvision layout and initialisation), ReLUs made not-in-place."""
    from torchvision.models import vgg

    feats = vgg.make_layers(vgg.cfgs["E"], batch_norm=False)
    for m in feats.modules():  # torchvision's VGG.__init__ initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.ReLU):
            m.inplace = False
    return feats


def weights_id(state_dict: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state_dict):
        t = state_dict[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _features_only(sd: dict) -> dict:
    """Accept full-model (`features.N.w`) or features-only (`N.w`) state dicts; return features-only."""
    if any(k.startswith("features.") for k in sd):
        return {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    return dict(sd)


def imagenet_file() -> Path:
    """Where torchvision looks for the ImageNet VGG-19 weights before downloading them."""
    from torchvision.models import VGG19_Weights

    from study.encoders.hub import hub_file

    return hub_file(VGG19_Weights.IMAGENET1K_V1.url)


def require_imagenet_file() -> Path:
    path = imagenet_file()
    if not path.is_file():
        raise StudyError(
            f"ImageNet VGG-19 weights not found at {path}: this machine cannot download them; copy "
            f"vgg19-dcbb9e9d.pth there (or set TORCH_HOME) or use a weights file path"
        )
    return path


def load_state_dict(weights: str, seed: int = 0) -> tuple[dict, dict]:
    """features-only state dict and provenance for `weights` = "imagenet" | "random" | path."""
    if weights == "random":
        torch.manual_seed(seed)
        return vgg19_features().state_dict(), {"source": "random", "seed": seed}
    if weights == "imagenet":
        path = require_imagenet_file()
        return _features_only(torch.load(path, map_location="cpu", weights_only=True)), {"source": "imagenet", "path": str(path)}
    path = Path(weights)
    if not path.is_file():
        raise StudyError(f"encoder weights file not found: {weights}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise StudyError(f"{path}: not a readable torch state_dict ({type(err).__name__})") from None
    meta = {"source": "file", "path": str(path)}
    if isinstance(obj, dict) and "state_dict" in obj:
        meta.update(obj.get("meta", {}))
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise StudyError(f"{path}: expected a VGG-19 state_dict, got {type(obj).__name__}")
    return _features_only(obj), meta


class FeatureExtractor(nn.Module):
    """Frozen VGG-19 up to a layer; maps a 1-channel image in [0, 1] to the encoder's expected input."""

    def __init__(self, features: nn.Sequential, input_mode: str = "unit"):
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.features = features.eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.input_mode = input_mode
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True):  # stays in eval mode: it is frozen
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if self.input_mode == "x255":
            x = x * 255.0
        elif self.input_mode == "imagenet":
            x = (x - self.mean) / self.std
        return self.features(x)


def resolve_input_mode(mode: str, weights: str) -> str:
    if mode != "auto":
        return mode
    return "imagenet" if weights == "imagenet" else "x255"


def vgg19_state(weights: str, seed: int = 0) -> nn.Sequential:
    """VGG-19 `features` holding `weights`; a file that is not VGG-19 weights is a one-line StudyError naming it."""
    sd, _ = load_state_dict(weights, seed)
    feats = vgg19_features()
    try:
        feats.load_state_dict(sd)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise StudyError(f"{weights}: not a VGG-19 state_dict ({first[:200]})") from None
    return feats


def feature_extractor(layer: str, weights: str = "random", *, input_mode: str = "auto", seed: int = 0) -> FeatureExtractor:
    """VGG-19 cut after `layer` (Keras `block3_conv2` or torchvision `relu3_2` / `conv3_2`), frozen.

    `block3_conv2` equals torchvision `vgg19().features[:14]` (post-ReLU, as in Keras).
    """
    if layer not in LAYER_END:
        raise StudyError(f"unknown VGG-19 layer {layer!r}")
    feats = vgg19_state(weights, seed)
    return FeatureExtractor(feats[: layer_end(layer)], resolve_input_mode(input_mode, weights))


def save_weights(state_dict: dict, meta: dict, path: Path) -> str:
    """Write `{"state_dict", "meta"}` atomically; returns the weights id."""
    wid = weights_id(state_dict)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"state_dict": state_dict, "meta": {**meta, "weights_id": wid}}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return wid
