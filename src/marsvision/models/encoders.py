"""One registry of encoders (backbones): SimCLRv2 ResNets by pattern and torchvision backbones by name.

Every encoder follows the contract of docs/ARCHITECTURE.md: ``feature_channels: int``,
``forward_features(x) -> (N, feature_channels, H/32, W/32)`` and ``forward(x) -> (N, feature_channels)``
(global average pool). Weights are never downloaded: torchvision models are built with ``weights=None`` and
pretrained weights are loaded from a file with ``marsvision.models.weights.load_encoder_weights``.

Names:
    * ``r{depth}_{width}x_sk{0|1}`` — SimCLRv2 ResNets, parsed generally (``r50_2x_sk1``, ``r18_0.25x_sk0``);
    * ``resnet18/34/50/101/152``, ``vgg16``, ``mobilenet_v2``, ``regnet_x_1_6gf`` — torchvision.

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
    SimCLRv2ResNet,
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

    def __call__(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) → pooled (N, feature_channels)."""
        ...


class TorchvisionEncoder(nn.Module):
    """A torchvision classification backbone cut before its pooling/classifier, under the encoder contract.

    The kept child modules are registered under their torchvision names, so the state-dict keys are
    torchvision's (``conv1.weight``, ``layer1.0.bn1.weight``, ``features.0.weight`` ...).
    """

    def __init__(self, model: nn.Module, children: tuple[str, ...], feature_channels: int) -> None:
        super().__init__()
        for name in children:
            self.add_module(name, getattr(model, name))
        self._order = children
        self.feature_channels: int = feature_channels

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


def _resnet(builder: Callable[..., tvm.ResNet]) -> Callable[[int], TorchvisionEncoder]:
    def build(in_channels: int) -> TorchvisionEncoder:
        model = builder(weights=None)
        if in_channels != 3:
            _replace_conv(model, "conv1", in_channels)
        channels = model.fc.in_features
        children = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        return TorchvisionEncoder(model, children, channels)

    return build


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


_TORCHVISION: dict[str, Callable[[int], TorchvisionEncoder]] = {
    "resnet18": _resnet(tvm.resnet18),
    "resnet34": _resnet(tvm.resnet34),
    "resnet50": _resnet(tvm.resnet50),
    "resnet101": _resnet(tvm.resnet101),
    "resnet152": _resnet(tvm.resnet152),
    "vgg16": _vgg16,
    "mobilenet_v2": _mobilenet_v2,
    "regnet_x_1_6gf": _regnet_x_1_6gf,
}


def list_encoders() -> list[str]:
    """Return the encoder names (SimCLRv2 names are examples of the general ``r{d}_{w}x_sk{s}`` pattern)."""
    return [*SIMCLRV2_NAMES, *_TORCHVISION]


def create_encoder(name: str, in_channels: int = 3, **kwargs: object) -> nn.Module:
    """Build the encoder called ``name`` with random weights.

    Args:
        name: a name from ``list_encoders()`` or any ``r{depth}_{width}x_sk{0|1}``.
        in_channels: input channels; ≠ 3 replaces the first conv of torchvision models.
        **kwargs: none are accepted yet (kept for a stable call signature); passing any raises ValueError.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or unexpected keyword arguments.
    """
    if kwargs:
        raise ValueError(f"create_encoder({name!r}) got unexpected arguments: {sorted(kwargs)}")
    if is_simclrv2_name(name):
        config = parse_simclrv2_name(name)
        return SimCLRv2ResNet(depth=config.depth, width=config.width, sk=config.sk, in_channels=in_channels)
    if name in _TORCHVISION:
        return _TORCHVISION[name](in_channels)
    raise ValueError(
        f"unknown encoder {name!r}; valid names: {', '.join(list_encoders())}, "
        f"or any r{{depth}}_{{width}}x_sk{{0|1}} with depth in {sorted(BLOCKS_PER_DEPTH)}"
    )


__all__ = ["SIMCLRV2_NAMES", "Encoder", "TorchvisionEncoder", "create_encoder", "list_encoders"]
