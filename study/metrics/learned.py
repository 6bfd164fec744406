"""Learned full-reference metrics: LPIPS with AlexNet or VGG-16 features (`lpips_alex`, `lpips_vgg`) and DISTS
(`dists`), lower is better for all three. Pure math: torch, torchvision and torchmetrics; no Ray, MLflow or SLURM.

The networks are torchmetrics' (LPIPS v0.1 with its linear heads, DISTS with its α/β; both ship inside the
torchmetrics wheel) on torchvision's ImageNet backbones, read from torchvision's cache
``torch.hub.get_dir()/checkpoints/`` (``$TORCH_HOME/hub/checkpoints/``) exactly where torchvision looks for them —
the same cache as study's ImageNet VGG-19 (study.encoders.vgg). study never downloads them: `missing_backbone` says
which file is missing and where it was looked for, before torchvision is asked to load anything (torch.hub only
downloads a file that is not there).

Each metric image (2-D, in [0, 1]: the windowed slice of study.metrics.registry.metric_images, 8-bit ones as
grey level / 255) is repeated to three channels at its own resolution; see METHODS_TEXT.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import torch

from study.errors import StudyError

#: name → higher-is-better
LEARNED_METRICS = {"lpips_alex": False, "lpips_vgg": False, "dists": False}

#: name → (backbone in words, torchvision weights enum, torchmetrics' LPIPS net type or None for DISTS)
_BACKBONES = {
    "lpips_alex": ("AlexNet", "AlexNet_Weights", "alex"),
    "lpips_vgg": ("VGG-16", "VGG16_Weights", "vgg"),
    "dists": ("VGG-16", "VGG16_Weights", None),
}

METHODS_TEXT = (
    "LPIPS (Zhang et al. 2018; v0.1 linear heads, AlexNet and VGG-16 features) and DISTS (Ding et al. 2020) were "
    "computed with torchmetrics' implementations on torchvision's ImageNet weights (AlexNet and VGG-16, "
    "IMAGENET1K_V1), on the same windowed images in [0, 1] as the other full-reference metrics (8-bit images as "
    "grey level / 255), each repeated to three identical channels at native resolution (no resizing or cropping). "
    "For LPIPS the image is mapped to [-1, 1] (2x - 1) before LPIPS' fixed scaling layer; for DISTS it is "
    "standardised with the ImageNet channel mean and standard deviation inside the network. "
    "LPIPS is the sum over five layers of the spatially averaged, learned-weighted squared differences of "
    "channel-normalised features, DISTS is one minus the α/β-weighted structure and texture similarities of the "
    "input and five VGG-16 stages (L2 pooling); both are 0 for identical images and lower is better."
)


def _check(name: str) -> None:
    if name not in LEARNED_METRICS:
        raise ValueError(f"unknown learned metric {name!r} (one of {', '.join(LEARNED_METRICS)})")


def weights_url(name: str) -> str:
    """The URL torchvision loads the metric's backbone from: the `DEFAULT` weights torchmetrics asks for (for
    AlexNet and VGG-16 these are IMAGENET1K_V1)."""
    _check(name)
    import torchvision.models

    return getattr(torchvision.models, _BACKBONES[name][1]).DEFAULT.url


def backbone_file(name: str) -> Path:
    """Where torchvision looks for the backbone weights before downloading them: torch.hub's
    ``get_dir()/checkpoints/<file name of the URL>`` (torch.hub.load_state_dict_from_url's own rule)."""
    from study.encoders.hub import hub_file

    return hub_file(weights_url(name))


def missing_backbone(name: str) -> str | None:
    """None where the metric can run offline; else one line naming the missing file, where it was looked for and
    where to get it."""
    path = backbone_file(name)
    if path.is_file():
        return None
    from study.encoders.hub import cache_hint

    return (f"{name}: ImageNet {_BACKBONES[name][0]} weights not found at {path} "
            f"{cache_hint(path, weights_url(name), 'them')}")


def _build_lpips(net_type: str) -> torch.nn.Module:
    """torchmetrics' LPIPS module (what its functional API builds): backbone from torchvision's cache, linear heads
    from the torchmetrics wheel."""
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    return _NoTrainLpips(net=net_type)


def _build_dists() -> torch.nn.Module:
    """torchmetrics' DISTS network: VGG-16 from torchvision's cache, α/β from the torchmetrics wheel."""
    from torchmetrics.functional.image.dists import DISTSNetwork

    return DISTSNetwork()


@functools.lru_cache(maxsize=None)
def _network(name: str, device: str, path: str) -> torch.nn.Module:
    """The metric's network, built once per (name, device, backbone file) in a process. Building draws nothing
    from the global RNG (torchvision's initialisation and DISTS' α/β placeholders run in a forked RNG)."""
    net_type = _BACKBONES[name][2]
    try:
        with torch.random.fork_rng(devices=[]):
            net = _build_lpips(net_type) if net_type else _build_dists()
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise StudyError(f"{name}: {path}: not readable as torchvision's ImageNet {_BACKBONES[name][0]} weights "
                         f"({type(err).__name__}: {first})") from None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to(device)


def _as_batch(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W) or (N, H, W) images in [0, 1] → float32 (N, 3, H, W), the grey channel repeated."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected a 2-D image or a stack of them, got shape {a.shape}")
    if a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
        raise ValueError(f"images must lie in [0, 1], got [{a.min()}, {a.max()}]")
    t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
    return t[:, None].repeat(1, 3, 1, 1)


class LearnedMetric:
    """One of LEARNED_METRICS, its network built once (cached per process); `metric(pred, ref)` → float."""

    def __init__(self, name: str, device: str | torch.device = "cpu"):
        problem = missing_backbone(name)
        if problem:
            raise StudyError(problem)
        self.name = name
        self.device = torch.device(device)
        self.net = _network(name, str(self.device), str(backbone_file(name)))

    def __call__(self, pred: np.ndarray, ref: np.ndarray) -> float:
        """The metric of one 2-D image pair in [0, 1]."""
        if np.ndim(pred) != 2:
            raise ValueError(f"expected a 2-D image, got shape {np.shape(pred)}")
        return float(self.batch(pred, ref)[0])

    def batch(self, preds: np.ndarray, refs: np.ndarray) -> np.ndarray:
        """The metric of each pair of two (N, H, W) stacks in [0, 1] (float64, shape (N,)); one forward pass."""
        x, y = _as_batch(preds, self.device), _as_batch(refs, self.device)
        if x.shape != y.shape:
            raise ValueError(f"image shapes differ: {tuple(x.shape[2:])} and {tuple(y.shape[2:])}")
        with torch.inference_mode():
            if _BACKBONES[self.name][2]:
                d = self.net(x, y, normalize=True)  # LPIPS: [0, 1] → 2x − 1 inside
            else:
                d = self.net(x, y)  # DISTS: [0, 1], ImageNet mean/std inside
        return d.reshape(-1).double().cpu().numpy()
