"""Method A's task models: the SimCLR pretraining model and the encoder + atrous-head segmenter."""

from __future__ import annotations

from typing import Protocol, cast

from torch import Tensor, nn

from marsvision.models.encoders import Encoder
from marsvision.models.heads import AtrousHead, HeadVariant, ProjectionHead


class Segmenter(Protocol):
    """What training methods may ask of a segmentation network beyond ``forward``: its two halves.

    Features can then be perturbed between them (UniMatch).
    """

    def encode(self, x: Tensor) -> list[Tensor]:
        """(N, C_in, H, W) → the feature maps the decoder reads."""
        ...

    def decode(self, features: list[Tensor], size: tuple[int, int]) -> Tensor:
        """Features → class logits (N, K, *size)."""
        ...


def _feature_channels(encoder: nn.Module) -> int:
    channels = getattr(encoder, "feature_channels", None)
    if not isinstance(channels, int):
        raise TypeError(f"{type(encoder).__name__} does not follow the encoder contract (feature_channels: int)")
    return channels


class SimCLRModel(nn.Module):
    """SimCLR's f and g: ``forward(x) -> {"embedding": z = g(h), "features": h = f(x)}``, h pooled (N, C)."""

    def __init__(self, encoder: nn.Module, projection_head: ProjectionHead) -> None:
        super().__init__()
        if projection_head.in_dim != _feature_channels(encoder):
            raise ValueError(
                f"projection head expects {projection_head.in_dim} channels, "
                f"the encoder gives {_feature_channels(encoder)}"
            )
        self.encoder = encoder
        self.projection_head = projection_head

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        h = self.encoder(x)  # (N, C)
        return {"embedding": self.projection_head(h), "features": h}  # z: (N, out_dim)


class AtrousSegmenter(nn.Module):
    """Encoder → atrous head → logits at the input size: ``forward(x) -> {"logits": (N, K, H, W)}``.

    The task head sits on the encoder's last feature map (SimCLR v1 style, the default) or, when
    ``projection_head`` and ``projection_layer ≥ 1`` are given, on that middle layer of g applied to every
    pixel of the feature map (SimCLRv2 style: g's linear layers act as 1×1 convs, its BN over all pixels).

    Args:
        encoder: any encoder of ``marsvision.models.encoders``.
        num_classes: K.
        head_variant: "paper" (no ReLU, the authors' block) or "relu" (DeepLabv3-style).
        projection_head: the pretrained g, kept (and fine-tuned) up to ``projection_layer``.
        projection_layer: how many layers of g to apply (0 = none).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        head_variant: HeadVariant = "paper",
        projection_head: ProjectionHead | None = None,
        projection_layer: int = 0,
    ) -> None:
        super().__init__()
        if head_variant not in ("paper", "relu"):
            raise ValueError(f"head_variant must be 'paper' or 'relu', got {head_variant!r}")
        channels = _feature_channels(encoder)
        self.encoder = encoder
        self.projection_head: ProjectionHead | None = None
        self.projection_layer = projection_layer
        if projection_layer > 0:
            if projection_head is None:
                raise ValueError("projection_layer > 0 needs a projection_head")
            if projection_layer > len(projection_head.layers):
                raise ValueError(f"projection_layer={projection_layer} but g has {len(projection_head.layers)} layers")
            if projection_head.in_dim != channels:
                raise ValueError(f"projection head expects {projection_head.in_dim} channels, encoder gives {channels}")
            self.projection_head = projection_head
            channels = projection_head.layer_dim(projection_layer)
        self.head = AtrousHead(channels, num_classes, relu=head_variant == "relu")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"logits": self.decode(self.encode(x), (x.shape[-2], x.shape[-1]))}

    def encode(self, x: Tensor) -> list[Tensor]:
        """The features the head reads: [(N, C, H/s, W/s)], after g's first layers when the head sits there."""
        features = cast(Encoder, self.encoder).forward_features(x)  # (N, C, H/s, W/s), s = output stride
        if self.projection_head is not None:
            n, c, h, w = features.shape
            pixels = features.permute(0, 2, 3, 1).reshape(n * h * w, c)  # (N·h·w, C)
            pixels = self.projection_head.forward_layers(pixels, upto=self.projection_layer)[-1]
            features = pixels.reshape(n, h, w, -1).permute(0, 3, 1, 2)  # (N, C', h, w)
        return [features]

    def decode(self, features: list[Tensor], size: tuple[int, int]) -> Tensor:
        """Class logits (N, K, *size) from :meth:`encode`'s features (perturbed ones too, as UniMatch does)."""
        return self.head(features[-1], size)


ContrastiveSegmenter = AtrousSegmenter
"""Method A's segmenter under the name of the method (contrastive pretraining + atrous head)."""


__all__ = ["AtrousSegmenter", "ContrastiveSegmenter", "Segmenter", "SimCLRModel"]
