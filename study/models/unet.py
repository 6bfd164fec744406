"""Paper 1's plain 2-D U-Net: two 3×3 conv + ReLU per level, no normalisation, 2×2 max-pool down,
2×2 stride-2 transposed conv up, skip concatenation, 1×1 conv + sigmoid, no residual.
With channels=32 and 5 levels the widths are 32→64→128→256→512 (≈7.76 M parameters).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, channels: int = 32, levels: int = 5, in_channels: int = 1, out_channels: int = 1):
        super().__init__()
        widths = [channels * 2**i for i in range(levels)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_double_conv(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(w * 2, w, 2, stride=2))
            self.dec.append(_double_conv(w * 2, w))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.multiple = 2 ** (levels - 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal weights and zero biases, as the original U-Net paper recommends for ReLU stacks.

        PyTorch's default (Kaiming-uniform with a=√5) shrinks the signal through the ReLU stack; with narrow
        CPU-demo widths that often ends in all-dead ReLUs and a constant output.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @torch.no_grad()
    def init_output_bias(self, mean: float) -> None:
        """Start the sigmoid output at the training targets' mean intensity instead of 0.5.

        Otherwise the first Adam steps spend themselves pushing every output down, and in narrow networks
        that drives the last ReLUs dead (a constant output from which training never recovers).
        """
        p = min(max(float(mean), 1e-4), 1 - 1e-4)
        self.head.bias.fill_(float(torch.logit(torch.tensor(p))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # pad to a multiple of 2^(levels-1) so any slice size works; crop back at the end
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return torch.sigmoid(self.head(x))[..., :h, :w]
