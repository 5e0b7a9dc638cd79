"""Heads: the SimCLR projection MLP g(·) and the atrous segmentation block of method A.

Shapes: ``ProjectionHead`` maps (N, in_dim) → (N, out_dim); ``AtrousHead`` maps an encoder feature map
(N, C, h, w) and the input size (H, W) to logits (N, K, H, W).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HeadVariant = Literal["paper", "relu"]


class ScaleOnlyBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm with a learned scale and no shift (SimCLRv2's last projection layer: BN ``center=False``).

    State-dict keys: ``weight``, ``running_mean``, ``running_var``, ``num_batches_tracked`` (no ``bias``).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(num_features))


class ProjectionLayer(nn.Module):
    """One layer of the projection MLP: linear → (BN) → (ReLU)."""

    def __init__(self, in_dim: int, out_dim: int, batch_norm: bool, last: bool) -> None:
        super().__init__()
        # With BN the linear layer has no bias (BN's shift replaces it); the last SimCLRv2 layer has neither
        # bias nor shift, so the embedding is only scaled per dimension.
        self.linear = nn.Linear(in_dim, out_dim, bias=not batch_norm)
        self.bn: nn.Module
        if not batch_norm:
            self.bn = nn.Identity()
        elif last:
            self.bn = ScaleOnlyBatchNorm1d(out_dim)
        else:
            self.bn = nn.BatchNorm1d(out_dim)
        self.relu = not last

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.linear(x))
        return F.relu(x) if self.relu else x


class ProjectionHead(nn.Module):
    """SimCLR projection head g(·): an MLP from encoder features h to the contrastive embedding z.

    SimCLRv2 (default): ``num_layers=3``, ``batch_norm=True`` — linear (no bias) → BN → ReLU for the middle
    layers, linear (no bias) → BN without shift and without ReLU for the last one; hidden width = in_dim.
    SimCLR v1: ``num_layers=2``, ``batch_norm=False`` — z = W2 ReLU(W1 h + b1) + b2 (``simclr_v1()``).

    ``forward_layers`` returns every layer's output so that a task head can sit on a middle layer of g
    (SimCLRv2 fine-tunes "from the first layer of g"); index 0 is the input h itself, as ``ft_proj_selector``
    in the TF code.

    Args:
        in_dim: encoder feature channels.
        out_dim: embedding dimension (128 in SimCLR).
        hidden_dim: width of the middle layers (default ``in_dim``).
        num_layers: number of linear layers (≥ 1).
        batch_norm: BN after every linear layer (SimCLRv2) or none (SimCLR v1).

    Raises:
        ValueError: ``num_layers < 1`` or a non-positive dimension.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 128,
        hidden_dim: int | None = None,
        num_layers: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        hidden = in_dim if hidden_dim is None else hidden_dim
        if num_layers < 1:
            raise ValueError(f"num_layers must be ≥ 1, got {num_layers}")
        if min(in_dim, out_dim, hidden) < 1:
            raise ValueError(f"dimensions must be positive, got in={in_dim} hidden={hidden} out={out_dim}")
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            ProjectionLayer(dims[j], dims[j + 1], batch_norm, last=j == num_layers - 1) for j in range(num_layers)
        )
        self.in_dim = in_dim
        self.out_dim = out_dim

    @classmethod
    def simclr_v1(cls, in_dim: int, out_dim: int = 128) -> ProjectionHead:
        """SimCLR v1's head: two linear layers with biases and a ReLU between, no BN."""
        return cls(in_dim, out_dim, num_layers=2, batch_norm=False)

    def layer_dim(self, index: int) -> int:
        """Channels of ``forward_layers(h)[index]`` (0 = the input h)."""
        if index == 0:
            return self.in_dim
        return self.layers[index - 1].linear.out_features  # type: ignore[union-attr,return-value]

    def forward_layers(self, h: Tensor, upto: int | None = None) -> list[Tensor]:
        """Return ``[h, g_1(h), g_2(g_1(h)), ...]`` up to layer ``upto`` (default: all layers)."""
        outputs = [h]
        for layer in list(self.layers)[: len(self.layers) if upto is None else upto]:
            outputs.append(layer(outputs[-1]))
        return outputs

    def forward(self, h: Tensor) -> Tensor:
        """Return the embedding z, (N, in_dim) → (N, out_dim)."""
        for layer in self.layers:
            h = layer(h)
        return h


class AtrousHead(nn.Module):
    """The atrous block of method A (SPEC.md), on the encoder's last feature map.

    Branches on the feature map (N, C, h, w), 256 channels each:
        * image pool: global average pool → 1×1 conv (no bias, no BN) → broadcast to (h, w);
        * 1×1 conv (with bias) → BN;
        * three 3×3 convs at dilation 6, 12, 18 (no bias) → BN each;
    then concatenate (1280) → 1×1 conv (no bias) → BN → bilinear resize to the input size → 1×1 conv to
    the classes (no bias). ``relu=False`` ("paper") is the authors' block, without any ReLU;
    ``relu=True`` adds a ReLU after every BN and after the image-pool conv, as DeepLabv3's ASPP.

    Args:
        in_channels: encoder feature channels (4096 for r50_2x_sk1).
        num_classes: output classes.
        channels: filters per branch.
        rates: dilation rates of the 3×3 branches.
        relu: the DeepLabv3-style variant.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 256,
        rates: tuple[int, ...] = (6, 12, 18),
        relu: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be ≥ 1, got {num_classes}")
        self.relu = relu
        self.pool_conv = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.conv1x1 = nn.Conv2d(in_channels, channels, 1, bias=True)
        self.bn1x1 = nn.BatchNorm2d(channels)
        self.atrous = nn.ModuleList(
            nn.Conv2d(in_channels, channels, 3, padding=r, dilation=r, bias=False) for r in rates
        )
        self.atrous_bn = nn.ModuleList(nn.BatchNorm2d(channels) for _ in rates)
        self.project = nn.Conv2d(channels * (2 + len(rates)), channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(channels)
        self.classifier = nn.Conv2d(channels, num_classes, 1, bias=False)

    def _act(self, x: Tensor) -> Tensor:
        return F.relu(x) if self.relu else x

    def forward(self, features: Tensor, output_size: tuple[int, int]) -> Tensor:
        """Return logits (N, num_classes, *output_size) from features (N, C, h, w)."""
        h, w = features.shape[-2:]
        pooled = self._act(self.pool_conv(features.mean(dim=(-2, -1), keepdim=True)))  # (N, 256, 1, 1)
        # Upsampling a 1×1 map (bilinear or nearest) is a broadcast.
        branches = [pooled.expand(-1, -1, h, w), self._act(self.bn1x1(self.conv1x1(features)))]
        for conv, bn in zip(self.atrous, self.atrous_bn, strict=True):
            branches.append(self._act(bn(conv(features))))
        x = self._act(self.project_bn(self.project(torch.cat(branches, dim=1))))  # (N, 256, h, w)
        # The paper resizes the 256-channel map and then applies the bias-free 1×1 classifier; both are
        # linear and act per pixel, so classifying first is the same function with 256/K times less memory.
        logits = self.classifier(x)  # (N, K, h, w)
        return F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)  # (N, K, H, W)


__all__ = ["AtrousHead", "HeadVariant", "ProjectionHead", "ScaleOnlyBatchNorm1d"]
