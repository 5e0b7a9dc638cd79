"""LESS's pixel projection head (Zhao et al. 2021): 1×1 convolutions, then unit length per pixel.

(N, C, h, w) → (N, D, h, w): ``num_layers − 1`` blocks of [1×1 convolution → BatchNorm → ReLU] of width D, a
last 1×1 convolution to D, and L2 normalisation over the channels, as in the authors' public code (2 layers of
256 channels there).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PixelProjectionHead(nn.Module):
    """The head of the module docstring.

    Args:
        in_channels: C.
        channels: D.
        num_layers: number of 1×1 convolutions (≥ 1).

    Raises:
        ValueError: if a size is not positive.
    """

    def __init__(self, in_channels: int, channels: int = 256, num_layers: int = 2) -> None:
        super().__init__()
        if min(in_channels, channels, num_layers) < 1:
            raise ValueError(f"sizes must be positive, got {in_channels}, {channels}, {num_layers}")
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            width = channels
        layers.append(nn.Conv2d(width, channels, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.layers(x), dim=1)
