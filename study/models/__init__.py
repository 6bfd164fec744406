"""Denoising networks."""

from study.models.unet import UNet

__all__ = ["UNet", "build_model"]


def build_model(spec) -> "UNet":
    """Model from a `ModelSpec`."""
    if spec.name == "unet":
        return UNet(channels=spec.channels, levels=spec.levels)
    raise ValueError(f"unknown model {spec.name!r}")
