"""CCT's light decoder (Ouali et al. 2020): a 1×1 convolution to class scores, then ×2 pixel-shuffle upsamplings.

(N, C, h, w) → (N, K, h·s, w·s) for an upscale s that is a power of two: a 1×1 convolution C → K (no bias), then
log₂ s blocks of [1×1 convolution K → 4K, ReLU, pixel shuffle ×2] (Shi et al. 2016), each convolution's
weights initialised with ICNR (Aitken et al. 2017: the four sub-pixel kernels start equal, against checkerboard
artefacts; the biases keep PyTorch's initialisation, as in CCT). CCT uses this decoder for its main and
auxiliary decoders; marsvision's CCT keeps DeepLabv3+ as the main decoder and uses it for the auxiliary ones.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def icnr_(weight: Tensor, scale: int = 2) -> Tensor:
    """ICNR: a kaiming-normal kernel for the first C_out/scale² outputs, repeated for each sub-pixel position."""
    out_channels, in_channels, height, width = weight.shape
    base = nn.init.kaiming_normal_(torch.empty(out_channels // scale**2, in_channels, height, width))
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(scale**2, dim=0))
    return weight


class PixelShuffleDecoder(nn.Module):
    """The decoder of the module docstring.

    Args:
        in_channels: C.
        num_classes: K.
        upscale: s, a power of two ≥ 1 (the encoder's output stride).

    Raises:
        ValueError: if a size is not positive or ``upscale`` is not a power of two.
    """

    def __init__(self, in_channels: int, num_classes: int, upscale: int) -> None:
        super().__init__()
        if min(in_channels, num_classes, upscale) < 1 or upscale & (upscale - 1):
            raise ValueError(
                f"sizes must be positive and upscale a power of two, got {in_channels}, {num_classes}, {upscale}"
            )
        classify = nn.Conv2d(in_channels, num_classes, kernel_size=1, bias=False)
        nn.init.kaiming_normal_(classify.weight, nonlinearity="relu")
        layers: list[nn.Module] = [classify]
        for _ in range(int(math.log2(upscale))):
            conv = nn.Conv2d(num_classes, num_classes * 4, kernel_size=1)
            icnr_(conv.weight)
            layers += [conv, nn.ReLU(inplace=True), nn.PixelShuffle(2)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.layers(x)
        return logits
