"""Paper 1's U-Net."""

from __future__ import annotations

import pytest
import torch

from study.models.unet import UNet


def test_paper_width_and_parameter_count():
    net = UNet(channels=32, levels=5)
    widths = [blk[0].out_channels for blk in net.down]
    assert widths == [32, 64, 128, 256, 512]
    assert sum(p.numel() for p in net.parameters()) == 7_759_521


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (1, 1, 50, 37), (3, 1, 96, 96)])
def test_output_shape_and_range(shape):
    torch.manual_seed(0)
    net = UNet(channels=4, levels=4)
    y = net(torch.rand(*shape))
    assert y.shape == shape
    assert (y >= 0).all() and (y <= 1).all()  # sigmoid


def test_output_bias_starts_at_the_target_mean():
    torch.manual_seed(0)
    net = UNet(channels=4, levels=3)
    net.init_output_bias(0.25)
    with torch.no_grad():
        net.head.weight.zero_()
        assert net(torch.rand(1, 1, 16, 16)).mean().item() == pytest.approx(0.25, abs=1e-5)


def test_redcnn_shape_parameters_and_identity_start():
    from study.spec import ModelSpec
    from study.models import REDCNN, build_model

    assert sum(p.numel() for p in REDCNN(96).parameters()) == 1_848_865  # the paper's ~1.85 M
    torch.manual_seed(0)
    net = build_model(ModelSpec(name="redcnn", channels=8))
    x = torch.rand(2, 1, 40, 33)
    y = net(x)
    assert y.shape == x.shape and (y >= 0).all()
    assert (y - x).abs().mean() < 0.05  # the input shortcut carries the image through at the start
    y.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
