"""RED-CNN (Chen et al., IEEE TMI 2017): a residual encoder-decoder CNN for low-dose CT.

Five 5×5 convolutions without padding (each shrinks the image by 4 pixels) mirrored by five 5×5 transposed
convolutions, ReLU activations, and three shortcuts that add the input, the 2nd and the 4th feature maps back onto
the decoder. The paper uses 96 filters; `channels` sets them here. Output in the network's [0, 1] scale (no
sigmoid: the residual path carries the input through).
"""

from __future__ import annotations

import torch
from torch import nn


class REDCNN(nn.Module):
    def __init__(self, channels: int = 96, kernel: int = 5):
        super().__init__()
        c = channels
        self.enc = nn.ModuleList([nn.Conv2d(1 if i == 0 else c, c, kernel) for i in range(5)])
        self.dec = nn.ModuleList([nn.ConvTranspose2d(c, 1 if i == 4 else c, kernel) for i in range(5)])
        self.relu = nn.ReLU(inplace=False)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.dec[4].weight, std=1e-3)  # start close to the identity (the input shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip1 = x
        h = self.relu(self.enc[0](x))
        h = self.relu(self.enc[1](h))
        skip2 = h
        h = self.relu(self.enc[2](h))
        h = self.relu(self.enc[3](h))
        skip3 = h
        h = self.relu(self.enc[4](h))
        h = self.dec[0](h) + skip3
        h = self.dec[1](self.relu(h))
        h = self.dec[2](self.relu(h)) + skip2
        h = self.dec[3](self.relu(h))
        h = self.dec[4](self.relu(h)) + skip1
        return self.relu(h)
