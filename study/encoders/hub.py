"""torchvision's weight cache, where every ImageNet backbone (VGG-19 for the encoders, AlexNet and VGG-16 for the
learned metrics) is looked for: ``torch.hub.get_dir()/checkpoints/<file name of the URL>``, torch.hub's own rule.
`study` never downloads into it; `cache_hint` is the one wording of where a missing file was looked for and how to
get it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse


def hub_file(url: str) -> Path:
    """Where torchvision looks for the weights at `url` before it would download them."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def cache_hint(path: Path, url: str, it: str = "it") -> str:
    """'(torchvision's cache …, TORCH_HOME=…); study never downloads it: copy <file> there from <url> or …'."""
    home = os.environ.get("TORCH_HOME")
    home = f"TORCH_HOME={home}" if home else "TORCH_HOME unset: ~/.cache/torch"
    return (f"(torchvision's cache $TORCH_HOME/hub/checkpoints/, {home}); study never downloads {it}: copy "
            f"{path.name} there from {url} or from a machine where torchvision downloaded it")
