"""One registry of encoders (backbones): SimCLRv2 ResNets by pattern and torchvision backbones by name.

Every encoder follows the contract of docs/ARCHITECTURE.md: ``feature_channels: int``,
``forward_features(x) -> (N, feature_channels, H/32, W/32)`` and ``forward(x) -> (N, feature_channels)``
(global average pool). Weights are never downloaded: torchvision models are built with ``weights=None`` and
pretrained weights are loaded from a file with ``marsvision.models.weights.load_encoder_weights``.

Names:
    * ``r{depth}_{width}x_sk{0|1}`` — SimCLRv2 ResNets, parsed generally (``r50_2x_sk1``, ``r18_0.25x_sk0``);
    * ``resnet18/34/50/101/152``, ``alexnet``, ``vgg16``, ``mobilenet_v2``, ``regnet_x_1_6gf`` — torchvision.

The VGG-16 and AlexNet encoders are their convolutional ``features`` (their fully connected fc6-fc7 are
classifier layers, left out as for every backbone). AlexNet's unpadded pooling makes its map a little smaller
than H/32 (224 → 6, not 7) and needs inputs of at least 63 pixels.

The torchvision wrappers keep torchvision's state-dict keys (minus the classifier), so a torchvision or
MoCo v2 state dict loads into them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torchvision.models as tvm
from torch import Tensor, nn

from marsvision.models.simclrv2_resnet import (
    BLOCKS_PER_DEPTH,
    OUTPUT_STRIDES,
    SimCLRv2ResNet,
    group_dilations,
    is_simclrv2_name,
    parse_simclrv2_name,
)

SIMCLRV2_NAMES: tuple[str, ...] = (
    # The 13 checkpoints released with SimCLRv2 ...
    *(f"r{d}_{w}x_sk{s}" for d in (50, 101, 152) for w in (1, 2) for s in (0, 1)),
    "r152_3x_sk1",
    # ... and small ones for CPU use.
    *(f"r{d}_1x_sk{s}" for d in (18, 34) for s in (0, 1)),
)
"""SimCLRv2 names that ``list_encoders`` shows; any ``r{depth}_{width}x_sk{0|1}`` is accepted."""


class Encoder(Protocol):
    """The encoder contract (docs/ARCHITECTURE.md), for type checking; every registry entry follows it."""

    feature_channels: int

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) → (N, feature_channels, H/32, W/32)."""
        ...

    @property
    def pyramid_channels(self) -> tuple[int, ...]:
        """Channels of the six maps of ``forward_pyramid``."""
        ...

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        """(N, C_in, H, W) → [x, /2, /4, /8, /16, /output_stride] with ``pyramid_channels`` (dense heads)."""
        ...

    def __call__(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) → pooled (N, feature_channels)."""
        ...


class TorchvisionEncoder(nn.Module):
    """A torchvision classification backbone cut before its pooling/classifier, under the encoder contract.

    The kept child modules are registered under their torchvision names, so the state-dict keys are
    torchvision's (``conv1.weight``, ``layer1.0.bn1.weight``, ``features.0.weight`` ...) — also those of
    segmentation_models_pytorch's ResNet encoders, so their checkpoints load too.

    ``stages``, when given, groups the children into the five scales of :meth:`forward_pyramid`.
    """

    def __init__(
        self,
        model: nn.Module,
        children: tuple[str, ...],
        feature_channels: int,
        stages: tuple[tuple[str, ...], ...] | None = None,
        pyramid_channels: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        for name in children:
            self.add_module(name, getattr(model, name))
        self._order = children
        self._stages = stages
        self.feature_channels: int = feature_channels
        self._pyramid_channels = pyramid_channels

    @property
    def pyramid_channels(self) -> tuple[int, ...]:
        """Channels of :meth:`forward_pyramid`'s six maps."""
        if self._pyramid_channels is None:
            raise ValueError(f"{type(self).__name__} of this backbone has no feature pyramid (ResNets have one)")
        return self._pyramid_channels

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        """Every scale, for dense heads: [x, /2, /4, /8, /16, /32 (or dilated)] (ResNets only)."""
        if self._stages is None:
            raise ValueError(f"{type(self).__name__} of this backbone has no feature pyramid (ResNets have one)")
        maps = [x]
        for stage in self._stages:
            for name in stage:
                x = getattr(self, name)(x)
            maps.append(x)
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        """Return the last feature map, (N, C_in, H, W) → (N, feature_channels, H/32, W/32)."""
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Return the globally average-pooled features, (N, feature_channels)."""
        return self.forward_features(x).mean(dim=(-2, -1))


def _replace_conv(parent: nn.Module, attr: str, in_channels: int) -> None:
    """Replace the conv ``parent.<attr>`` by a fresh one with ``in_channels`` inputs and the same settings."""
    # getattr/setattr also address nn.Sequential children by their index name ("0").
    old = getattr(parent, attr)
    if not isinstance(old, nn.Conv2d):
        raise TypeError(f"expected a Conv2d at {attr!r}, found {type(old).__name__}")
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        old.kernel_size,  # type: ignore[arg-type]
        stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding,  # type: ignore[arg-type]
        dilation=old.dilation,  # type: ignore[arg-type]
        groups=old.groups,
        bias=old.bias is not None,
    )
    setattr(parent, attr, new)


_RESNET_STAGES = (("conv1", "bn1", "relu"), ("maxpool", "layer1"), ("layer2",), ("layer3",), ("layer4",))


def _dilate(group: nn.Module, dilation: int) -> None:
    """Trade a block group's stride for dilation: strided convs get stride 1, 3×3 convs dilation and padding.

    The parameters do not change, so weights load either way. (torchvision's ``replace_stride_with_dilation``
    does not support the basic blocks of ResNet-18/34; this rule is DeepLab's, as smp's ``make_dilated``.)
    """
    for module in group.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
            if module.kernel_size[0] > 1:
                module.dilation = (dilation, dilation)
                module.padding = (dilation * (module.kernel_size[0] // 2), dilation * (module.kernel_size[1] // 2))


def _resnet(builder: Callable[..., tvm.ResNet]) -> Callable[[int, int], TorchvisionEncoder]:
    def build(in_channels: int, output_stride: int) -> TorchvisionEncoder:
        model = builder(weights=None)
        for index, dilation in enumerate(group_dilations(output_stride), start=1):
            if dilation > 1:
                _dilate(getattr(model, f"layer{index}"), dilation)
        if in_channels != 3:
            _replace_conv(model, "conv1", in_channels)
        channels = model.fc.in_features
        children = tuple(name for stage in _RESNET_STAGES for name in stage)
        widths = [getattr(model, f"layer{i}")[0].conv1.in_channels for i in (2, 3, 4)]  # outputs of layers 1-3
        pyramid = (in_channels, model.conv1.out_channels, *widths, channels)
        return TorchvisionEncoder(model, children, channels, _RESNET_STAGES, pyramid)

    return build


def _stride_32_only(build: Callable[[int], TorchvisionEncoder]) -> Callable[[int, int], TorchvisionEncoder]:
    """A builder for backbones without a dilated variant: any output stride but 32 is refused."""

    def checked(in_channels: int, output_stride: int) -> TorchvisionEncoder:
        if output_stride != 32:
            raise ValueError(f"output_stride {output_stride}: only ResNet encoders can be dilated")
        return build(in_channels)

    return checked


def _alexnet(in_channels: int) -> TorchvisionEncoder:
    model = tvm.alexnet(weights=None)
    if in_channels != 3:
        _replace_conv(model.features, "0", in_channels)
    return TorchvisionEncoder(model, ("features",), 256)  # features ends with the 3rd max pool


def _vgg16(in_channels: int) -> TorchvisionEncoder:
    model = tvm.vgg16(weights=None)
    if in_channels != 3:
        _replace_conv(model.features, "0", in_channels)
    return TorchvisionEncoder(model, ("features",), 512)  # features ends with the 5th max pool: stride 32


def _mobilenet_v2(in_channels: int) -> TorchvisionEncoder:
    model = tvm.mobilenet_v2(weights=None)
    if in_channels != 3:
        _replace_conv(model.features[0], "0", in_channels)  # features.0 = Conv2dNormActivation
    return TorchvisionEncoder(model, ("features",), model.last_channel)


def _regnet_x_1_6gf(in_channels: int) -> TorchvisionEncoder:
    # torchvision computes RegNet's block widths with tensor ops, which fail under a meta default device
    # (model_info); build it on the CPU (9 M parameters) and move it to the requested default device.
    device = torch.get_default_device()
    with torch.device("cpu"):
        model = tvm.regnet_x_1_6gf(weights=None)
    model = model.to(device)
    if in_channels != 3:
        _replace_conv(model.stem, "0", in_channels)
    return TorchvisionEncoder(model, ("stem", "trunk_output"), model.fc.in_features)


_TORCHVISION: dict[str, Callable[[int, int], TorchvisionEncoder]] = {
    "resnet18": _resnet(tvm.resnet18),
    "resnet34": _resnet(tvm.resnet34),
    "resnet50": _resnet(tvm.resnet50),
    "resnet101": _resnet(tvm.resnet101),
    "resnet152": _resnet(tvm.resnet152),
    "alexnet": _stride_32_only(_alexnet),
    "vgg16": _stride_32_only(_vgg16),
    "mobilenet_v2": _stride_32_only(_mobilenet_v2),
    "regnet_x_1_6gf": _stride_32_only(_regnet_x_1_6gf),
}


def list_encoders() -> list[str]:
    """Return the encoder names (SimCLRv2 names are examples of the general ``r{d}_{w}x_sk{s}`` pattern)."""
    return [*SIMCLRV2_NAMES, *_TORCHVISION]


def create_encoder(name: str, in_channels: int = 3, output_stride: int = 32, **kwargs: object) -> nn.Module:
    """Build the encoder called ``name`` with random weights.

    Args:
        name: a name from ``list_encoders()`` or any ``r{depth}_{width}x_sk{0|1}``.
        in_channels: input channels; ≠ 3 replaces the first conv of torchvision models.
        output_stride: 32, or 16 / 8 for dense prediction (ResNets dilate their last one or two groups).
        **kwargs: none are accepted (weights are never downloaded: ``pretrained=True`` is refused, not ignored).

    Raises:
        ValueError: unknown name (the message lists the valid ones), an output stride the backbone lacks, or
            unexpected keyword arguments.
    """
    if kwargs:
        raise ValueError(f"create_encoder({name!r}) got unexpected arguments: {sorted(kwargs)}")
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    if is_simclrv2_name(name):
        config = parse_simclrv2_name(name)
        return SimCLRv2ResNet(config.depth, config.width, config.sk, in_channels, output_stride)
    if name in _TORCHVISION:
        return _TORCHVISION[name](in_channels, output_stride)
    raise ValueError(
        f"unknown encoder {name!r}; valid names: {', '.join(list_encoders())}, "
        f"or any r{{depth}}_{{width}}x_sk{{0|1}} with depth in {sorted(BLOCKS_PER_DEPTH)}"
    )


__all__ = ["SIMCLRV2_NAMES", "Encoder", "TorchvisionEncoder", "create_encoder", "list_encoders"]
