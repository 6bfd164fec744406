"""Denoising networks."""

from study.models.redcnn import REDCNN
from study.models.unet import UNet

__all__ = ["REDCNN", "UNet", "build_model"]


def build_model(spec):
    """Model from a `ModelSpec`: paper 1's U-Net or RED-CNN (`channels` = its filters)."""
    if spec.name == "unet":
        return UNet(channels=spec.channels, levels=spec.levels)
    if spec.name == "redcnn":
        return REDCNN(channels=spec.channels)
    raise ValueError(f"unknown model {spec.name!r}")
