"""SimCLRv2 ResNet family: depth 18-152, width multiplier, selective kernels (SK) on or off.

A PyTorch re-implementation of the encoder of SimCLRv2 (Chen et al., "Big Self-Supervised Models are Strong
Semi-Supervised Learners", 2020), written so that the official TensorFlow checkpoints, once converted
(``marsvision.models.convert_tf``), load with ``strict=True`` and compute the same function.

Architecture (``r{depth}_{width}x_sk{0|1}``), as in the official TF code:

* stem, SK off: 7×7 conv stride 2 → BN → ReLU → 3×3 max pool stride 2;
  SK on ("ResNet-D" stem): 3×3 conv stride 2 to 32w → BN → ReLU → 3×3 conv to 32w → BN → ReLU → 3×3 conv to
  64w → BN → ReLU → 3×3 max pool stride 2.
* four block groups of 64w, 128w, 256w, 512w filters, strides 1, 2, 2, 2; the first block of every group has
  a projection shortcut (also in group 1, whose stride is 1). Bottleneck blocks (depth ≥ 50) put the stride
  on the 3×3 conv and expand by 4; basic blocks (depth 18/34) are two 3×3 convs.
* SK on: the bottleneck's 3×3 conv is a selective-kernel conv: one 3×3 conv to 2× the filters (both streams
  are plain 3×3 convs: the official code splits one conv, it does not use a dilated second path) → BN → ReLU →
  split into two streams; their sum is globally pooled → 1×1 conv to max(filters/16, 32) → BN → ReLU → 1×1
  conv to 2× filters → softmax over the two streams → weighted sum. The projection shortcut becomes ResNet-D:
  2×2 average pool (stride of the block) → 1×1 conv stride 1 → BN. As in the official code, basic blocks
  never use SK convs; for depth 18/34 SK only changes the stem and the shortcuts.
* every conv has no bias and TF's VarianceScaling initialisation; BN ε = 1e-5, momentum 0.1 (TF decay 0.9);
  the last BN of each residual branch is initialised to zero (``init_zero`` in the TF code).
* padding follows TF: odd kernels pad symmetrically (``fixed_padding``), the stem max pool and the stride-1
  shortcut average pool use TF "SAME" padding (one extra row/column at the end, ignored by the pool).

Feature channels: 2048w (bottleneck) or 512w (basic); ``forward_features`` returns (N, C, H/32, W/32) and
``forward`` the global average pool (N, C), as the TF code's ``final_avg_pool``.

State-dict layout (what a converted SimCLRv2 checkpoint must provide)::

    stem.conv1.weight, stem.bn1.{weight,bias,running_mean,running_var,num_batches_tracked}   # SK off: 7×7
    stem.conv{1,2,3}.weight, stem.bn{1,2,3}.*                                              # SK on
    layer{g}.{b}.shortcut.conv.weight, layer{g}.{b}.shortcut.bn.*                          # block 0 only
    layer{g}.{b}.conv1.weight, layer{g}.{b}.bn1.*                                          # 1×1 (basic: 3×3)
    layer{g}.{b}.conv2.weight, layer{g}.{b}.bn2.*                                          # 3×3, SK off
    layer{g}.{b}.conv2.conv.weight, .conv2.bn.*, .conv2.fc1.weight, .conv2.fc_bn.*, .conv2.fc2.weight  # SK on
    layer{g}.{b}.conv3.weight, layer{g}.{b}.bn3.*                                          # bottleneck only

with g = 1..4 and b = 0..blocks-1. Conv weights are (out, in, kh, kw) (TF's HWIO kernels transposed).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-5
SK_RATIO = 1.0 / 16.0
SK_MIN_DIM = 32

BLOCKS_PER_DEPTH: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
}
"""Blocks per group; depths below 50 use basic blocks, the rest bottleneck blocks (as in the TF code)."""

OUTPUT_STRIDES = (32, 16, 8)
"""Output strides an encoder can be built with: 16 dilates the last group, 8 the last two (DeepLab)."""


def group_dilations(output_stride: int) -> tuple[int, int, int, int]:
    """Dilation of the 3×3 convs of each block group at ``output_stride``; a dilated group has stride 1.

    DeepLab's atrous ResNet (and segmentation_models_pytorch's ``make_dilated``): every conv of the last group
    dilated by 2 at stride 16; the last two groups by 2 and 4 at stride 8.
    """
    return {32: (1, 1, 1, 1), 16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}[output_stride]


_NAME_RE = re.compile(r"^r(\d+)_(\d+(?:\.\d+)?)x_sk([01])$")


@dataclass(frozen=True)
class SimCLRv2Config:
    """Architecture of one SimCLRv2 ResNet: ``depth``, ``width`` multiplier and ``sk`` on/off."""

    depth: int = 50
    width: float = 1.0
    sk: bool = False

    @property
    def name(self) -> str:
        """The canonical name, e.g. ``r50_2x_sk1``."""
        width = f"{self.width:g}"
        return f"r{self.depth}_{width}x_sk{int(self.sk)}"

    @property
    def bottleneck(self) -> bool:
        """Whether the blocks are bottleneck blocks (depth ≥ 50)."""
        return self.depth >= 50


def is_simclrv2_name(name: str) -> bool:
    """Whether ``name`` has the form ``r{depth}_{width}x_sk{0|1}`` (its values are checked when parsed)."""
    return _NAME_RE.match(name) is not None


def parse_simclrv2_name(name: str) -> SimCLRv2Config:
    """Parse ``r{depth}_{width}x_sk{0|1}`` (``r50_2x_sk1``, ``r18_0.25x_sk0``); ValueError otherwise."""
    match = _NAME_RE.match(name)
    if match is None:
        raise ValueError(f"not a SimCLRv2 ResNet name (expected r{{depth}}_{{width}}x_sk{{0|1}}): {name!r}")
    depth, width, sk = int(match.group(1)), float(match.group(2)), match.group(3) == "1"
    if depth not in BLOCKS_PER_DEPTH:
        raise ValueError(f"unsupported depth {depth} in {name!r}; choose from {sorted(BLOCKS_PER_DEPTH)}")
    if width <= 0:
        raise ValueError(f"width multiplier must be positive in {name!r}")
    return SimCLRv2Config(depth=depth, width=width, sk=sk)


def _channels(base: int, width: float) -> int:
    """Scale a channel count by the width multiplier; fractional widths (tests) round down, never below 1."""
    return max(1, int(base * width))


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    # Odd kernels: TF's fixed_padding pads (k-1)//2 on both sides, the same as PyTorch's symmetric padding.
    padding = dilation * (kernel // 2)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, dilation=dilation, bias=False)


def _bn(channels: int, zero_init: bool = False) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=BN_EPS)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return bn


def _variance_scaling_(weight: Tensor) -> None:
    """TF's default VarianceScaling initialiser (scale 1, fan-in, normal truncated at 2σ), as SimCLRv2 uses."""
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    # 0.8796... is the standard deviation of a unit normal truncated to [-2, 2]; TF divides by it so that the
    # truncated samples have variance 1 / fan_in.
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    if weight.is_meta:  # shape-only model: nothing to fill
        return
    with torch.no_grad():
        # Inverse-CDF sampling of N(0, 1) restricted to [-2, 2]: x = √2 erfinv(u), u ~ U(-erf(√2), erf(√2)).
        # The same method as nn.init.trunc_normal_, written in place because that one is ~10× slower on CPU.
        bound = math.erf(math.sqrt(2.0))
        weight.uniform_(-bound, bound).erfinv_().mul_(math.sqrt(2.0) * std)


def tf_same_max_pool(x: Tensor, kernel: int = 3, stride: int = 2) -> Tensor:
    """Max pool with TF "SAME" padding (extra padding goes at the end, padded values never win)."""
    pads: list[int] = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel, stride)


class StemSK0(nn.Module):
    """Standard stem: 7×7 conv stride 2 → BN → ReLU → TF-SAME 3×3 max pool stride 2."""

    def __init__(self, in_channels: int, width: float) -> None:
        super().__init__()
        out = _channels(64, width)
        self.conv1 = _conv(in_channels, out, 7, stride=2)
        self.bn1 = _bn(out)
        self.out_channels = out

    def features(self, x: Tensor) -> Tensor:
        """The stem before its max pool: (N, C_in, H, W) → (N, 64w, H/2, W/2)."""
        return F.relu(self.bn1(self.conv1(x)))

    def forward(self, x: Tensor) -> Tensor:
        return tf_same_max_pool(self.features(x))  # (N, 64w, H/4, W/4)


class StemSK1(nn.Module):
    """ResNet-D stem of the SK models: three 3×3 convs (32w, 32w, 64w), the first with stride 2."""

    def __init__(self, in_channels: int, width: float) -> None:
        super().__init__()
        out = _channels(64, width)
        # TF: 64 * width_multiplier // 2 for the first two convs.
        half = max(1, out // 2)
        self.conv1 = _conv(in_channels, half, 3, stride=2)
        self.bn1 = _bn(half)
        self.conv2 = _conv(half, half, 3)
        self.bn2 = _bn(half)
        self.conv3 = _conv(half, out, 3)
        self.bn3 = _bn(out)
        self.out_channels = out

    def features(self, x: Tensor) -> Tensor:
        """The stem before its max pool: (N, C_in, H, W) → (N, 64w, H/2, W/2)."""
        x = F.relu(self.bn1(self.conv1(x)))  # (N, 32w, H/2, W/2)
        x = F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.bn3(self.conv3(x)))  # (N, 64w, H/2, W/2)

    def forward(self, x: Tensor) -> Tensor:
        return tf_same_max_pool(self.features(x))  # (N, 64w, H/4, W/4)


class SelectiveKernelConv(nn.Module):
    """SK conv of SimCLRv2: two 3×3 streams from one conv, mixed by a softmax attention over the streams."""

    def __init__(self, in_channels: int, filters: int, stride: int, dilation: int = 1) -> None:
        super().__init__()
        mid = max(int(filters * SK_RATIO), SK_MIN_DIM)
        self.filters = filters
        self.conv = _conv(in_channels, 2 * filters, 3, stride=stride, dilation=dilation)
        self.bn = _bn(2 * filters)
        self.fc1 = nn.Conv2d(filters, mid, 1, bias=False)
        self.fc_bn = _bn(mid)
        self.fc2 = nn.Conv2d(mid, 2 * filters, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        streams = F.relu(self.bn(self.conv(x)))  # (N, 2F, h, w)
        streams = streams.view(n, 2, self.filters, *streams.shape[-2:])  # (N, 2, F, h, w)
        pooled = streams.sum(dim=1).mean(dim=(-2, -1), keepdim=True)  # (N, F, 1, 1)
        mixing = self.fc2(F.relu(self.fc_bn(self.fc1(pooled))))  # (N, 2F, 1, 1)
        mixing = mixing.view(n, 2, self.filters, 1, 1).softmax(dim=1)  # softmax over the two streams
        return (streams * mixing).sum(dim=1)  # (N, F, h, w)


class ProjectionShortcut(nn.Module):
    """Projection shortcut: 1×1 conv (with stride) → BN, or with SK the ResNet-D avg pool → 1×1 conv → BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, resnet_d: bool) -> None:
        super().__init__()
        self.resnet_d = resnet_d
        self.stride = stride
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=1 if resnet_d else stride, bias=False)
        self.bn = _bn(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.resnet_d:
            if self.stride > 1:
                # TF: fixed_padding(2) puts one zero row/column at the end, then a VALID pool that counts it.
                x = F.avg_pool2d(F.pad(x, [0, 1, 0, 1]), 2, self.stride)
            else:
                # TF "SAME" 2×2 pool at stride 1: padding at the end, excluded from the average; a symmetric
                # pad of 1 with count_include_pad=False, minus the first row/column, is exactly that.
                x = F.avg_pool2d(x, 2, 1, padding=1, count_include_pad=False)[..., 1:, 1:]
        return self.bn(self.conv(x))


class BottleneckBlock(nn.Module):
    """Bottleneck block (ResNet v1.5: stride on the 3×3 conv), optionally with an SK conv."""

    def __init__(
        self, in_channels: int, filters: int, stride: int, projection: bool, sk: bool, dilation: int = 1
    ) -> None:
        super().__init__()
        out = 4 * filters
        self.shortcut = ProjectionShortcut(in_channels, out, stride, resnet_d=sk) if projection else None
        self.conv1 = _conv(in_channels, filters, 1)
        self.bn1 = _bn(filters)
        self.conv2: nn.Module
        # The SK conv normalises and activates its own output, so it has no bn2.
        self.bn2: nn.BatchNorm2d | None
        if sk:
            self.conv2, self.bn2 = SelectiveKernelConv(filters, filters, stride, dilation), None
        else:
            self.conv2, self.bn2 = _conv(filters, filters, 3, stride=stride, dilation=dilation), _bn(filters)
        self.conv3 = _conv(filters, out, 1)
        self.bn3 = _bn(out, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.conv2(y)
        if self.bn2 is not None:
            y = F.relu(self.bn2(y))
        y = self.bn3(self.conv3(y))
        return F.relu(y + shortcut)


class BasicBlock(nn.Module):
    """Basic block (two 3×3 convs); as in the official code SK only affects its shortcut."""

    def __init__(
        self, in_channels: int, filters: int, stride: int, projection: bool, sk: bool, dilation: int = 1
    ) -> None:
        super().__init__()
        self.shortcut = ProjectionShortcut(in_channels, filters, stride, resnet_d=sk) if projection else None
        self.conv1 = _conv(in_channels, filters, 3, stride=stride, dilation=dilation)
        self.bn1 = _bn(filters)
        self.conv2 = _conv(filters, filters, 3, dilation=dilation)
        self.bn2 = _bn(filters, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.shortcut is None else self.shortcut(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + shortcut)


class SimCLRv2ResNet(nn.Module):
    """SimCLRv2 ResNet encoder (see the module docstring for the architecture and the state-dict layout).

    Args:
        depth: 18, 34, 50, 101, 152 or 200.
        width: width multiplier (1, 2, 3; fractional values such as 0.25 give tiny test models).
        sk: selective kernels (and the ResNet-D stem/shortcuts that come with them in SimCLRv2).
        in_channels: input channels (1 for grayscale NAVCAM, 3 for the ImageNet checkpoints).
        output_stride: 32 (the classification network), or 16 / 8 for dense prediction: the last one or two
            groups keep their resolution and dilate their 3×3 convs instead (DeepLab's atrous ResNet, as
            torchvision's ``replace_stride_with_dilation``); the parameters are the same, so weights load either way.
    """

    def __init__(
        self, depth: int = 50, width: float = 1.0, sk: bool = False, in_channels: int = 3, output_stride: int = 32
    ) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_DEPTH:
            raise ValueError(f"unsupported depth {depth}; choose from {sorted(BLOCKS_PER_DEPTH)}")
        if width <= 0:
            raise ValueError(f"width multiplier must be positive, got {width}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be ≥ 1, got {in_channels}")
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
        self.config = SimCLRv2Config(depth=depth, width=width, sk=sk)
        self.in_channels = in_channels
        self.stem: StemSK0 | StemSK1 = StemSK1(in_channels, width) if sk else StemSK0(in_channels, width)
        block_cls = BottleneckBlock if self.config.bottleneck else BasicBlock
        expansion = 4 if self.config.bottleneck else 1
        channels = self.stem.out_channels
        groups = []
        plan = zip(BLOCKS_PER_DEPTH[depth], (1, 2, 2, 2), group_dilations(output_stride), strict=True)
        for index, (blocks, stride, dilation) in enumerate(plan):
            filters = _channels(64 * 2**index, width)
            stride = 1 if dilation > 1 else stride
            layer = []
            for b in range(blocks):
                first = b == 0
                layer.append(block_cls(channels, filters, stride if first else 1, first, sk, dilation=dilation))
                channels = filters * expansion
            groups.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = groups
        self.feature_channels: int = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                _variance_scaling_(module.weight)

    @classmethod
    def from_name(cls, name: str, in_channels: int = 3, output_stride: int = 32) -> SimCLRv2ResNet:
        """Build from a name such as ``r50_2x_sk1``."""
        config = parse_simclrv2_name(name)
        return cls(config.depth, config.width, config.sk, in_channels=in_channels, output_stride=output_stride)

    @property
    def pyramid_channels(self) -> tuple[int, ...]:
        """Channels of :meth:`forward_pyramid`'s six maps."""
        expansion = 4 if self.config.bottleneck else 1
        widths = [_channels(64 * 2**index, self.config.width) * expansion for index in range(4)]
        return (self.in_channels, self.stem.out_channels, *widths)

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        """Every scale, for dense heads: [x, /2 (stem before its pool), /4, /8, /16, /32 (or dilated)]."""
        stem = self.stem.features(x)  # (N, 64w, H/2, W/2)
        c1 = self.layer1(tf_same_max_pool(stem))  # stride 4
        c2 = self.layer2(c1)  # stride 8
        c3 = self.layer3(c2)  # stride 16
        return [x, stem, c1, c2, c3, self.layer4(c3)]

    def forward_features(self, x: Tensor) -> Tensor:
        """Return the last feature map, (N, in_channels, H, W) → (N, feature_channels, H/32, W/32)."""
        x = self.stem(x)  # (N, 64w, H/4, W/4)
        x = self.layer1(x)  # stride 4
        x = self.layer2(x)  # stride 8
        x = self.layer3(x)  # stride 16
        return self.layer4(x)  # stride 32

    def forward(self, x: Tensor) -> Tensor:
        """Return the globally average-pooled features, (N, feature_channels)."""
        return self.forward_features(x).mean(dim=(-2, -1))


def simclrv2_resnet(name: str, in_channels: int = 3, output_stride: int = 32) -> SimCLRv2ResNet:
    """Build a SimCLRv2 ResNet from its name (``r{depth}_{width}x_sk{0|1}``)."""
    return SimCLRv2ResNet.from_name(name, in_channels=in_channels, output_stride=output_stride)


__all__ = [
    "BLOCKS_PER_DEPTH",
    "SimCLRv2Config",
    "SimCLRv2ResNet",
    "is_simclrv2_name",
    "parse_simclrv2_name",
    "simclrv2_resnet",
    "tf_same_max_pool",
]
