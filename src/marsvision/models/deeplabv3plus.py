"""DeepLabv3+ with one shared encoder and two decoders (paper 002, §5.3, Fig. 7; method B-seg).

B = an encoder of marsvision's registry (:func:`~marsvision.models.encoders.create_encoder`), built at output
stride 16 or 8; H_seg = DeepLabv3+ decoder + 1×1 conv to class logits, resized to the input; H_s = a second
DeepLabv3+ decoder + 1×1 conv to a 128-channel embedding, left at the decoder's resolution (stride 4).

The decoders are segmentation_models_pytorch's ``DeepLabV3PlusDecoder``. They read the encoder's feature pyramid
(``forward_pyramid``: [x, /2, /4, /8, /16, /output_stride] with ``pyramid_channels``): ASPP on the last map,
upsampled ×output_stride/4, joined with the stride-4 map; they return ``decoder_channels`` channels at stride 4.
Input sizes must therefore be multiples of the output stride (16 or 8); checked in ``forward``.
Example, resnet18 at 64×64: pyramid channels (1, 64, 64, 128, 256, 512), decoder output (N, 256, 16, 16).
ResNet encoders keep torchvision's parameter names, which are also smp's: checkpoints made with smp's encoder
(marsvision 0.1) load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

import torch.nn.functional as F
from segmentation_models_pytorch.base.initialization import initialize_decoder, initialize_head
from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder
from torch import Tensor, nn

from marsvision.models.encoders import Encoder, create_encoder

_ENCODER_DEPTH: Literal[5] = 5  # DeepLabv3+ uses all five encoder stages (smp's convention)


class DualHeadDeepLabV3Plus(nn.Module):
    """One encoder B shared by two DeepLabv3+ decoders: H_seg (logits) and H_s (contrastive embedding).

    ``forward(x)`` returns ``{"logits": (N, K, H, W), "embedding": (N, E, H/4, W/4)}``. H_s can be skipped
    per call (``forward(x, with_embedding=False)`` → only ``{"logits": ...}``, for inference / ONNX export)
    or left out altogether (``with_embedding=False`` here: no H_s parameters, e.g. the supervised baseline,
    where unused parameters would trouble DDP; a checkpoint with H_s then needs ``strict=False``).

    Args:
        encoder_name: any smp encoder name (paper: ``"resnet101"``).
        in_channels: input channels (1 for grayscale NAVCAM).
        num_classes: K (4 terrain classes in method B-seg).
        embedding_dim: E, channels of H_s's output (128 in the paper, §5.3).
        encoder_output_stride: 16 (default) or 8; the last stages are dilated instead of strided.
        decoder_channels: width of each decoder (256, DeepLabv3+ paper and smp default).
        decoder_atrous_rates: ASPP dilation rates (smp 0.6 default ``(12, 24, 36)``).
        with_embedding: build H_s (default) or not.

    Raises:
        ValueError: on an output stride other than 8/16 or a non-positive size.
    """

    def __init__(
        self,
        encoder_name: str = "resnet101",
        in_channels: int = 1,
        num_classes: int = 4,
        embedding_dim: int = 128,
        encoder_output_stride: int = 16,
        decoder_channels: int = 256,
        decoder_atrous_rates: Sequence[int] = (12, 24, 36),
        with_embedding: bool = True,
    ) -> None:
        super().__init__()
        if encoder_output_stride not in (8, 16):
            raise ValueError(f"encoder_output_stride must be 8 or 16, got {encoder_output_stride}")
        if min(in_channels, num_classes, embedding_dim, decoder_channels) < 1:
            raise ValueError("in_channels, num_classes, embedding_dim and decoder_channels must be positive")
        self.encoder = create_encoder(encoder_name, in_channels=in_channels, output_stride=encoder_output_stride)
        pyramid_channels = cast(Encoder, self.encoder).pyramid_channels

        def decoder() -> DeepLabV3PlusDecoder:
            return DeepLabV3PlusDecoder(
                encoder_channels=pyramid_channels,
                encoder_depth=_ENCODER_DEPTH,
                out_channels=decoder_channels,
                atrous_rates=tuple(decoder_atrous_rates),
                output_stride=encoder_output_stride,
                aspp_separable=True,
                aspp_dropout=0.5,  # smp 0.6 DeepLabV3Plus default
            )

        self.seg_decoder = decoder()
        self.seg_head = nn.Conv2d(decoder_channels, num_classes, kernel_size=1)
        initialize_decoder(self.seg_decoder)
        initialize_head(self.seg_head)
        self.embedding_decoder: DeepLabV3PlusDecoder | None = None
        self.embedding_head: nn.Conv2d | None = None
        if with_embedding:
            self.embedding_decoder = decoder()
            self.embedding_head = nn.Conv2d(decoder_channels, embedding_dim, kernel_size=1)
            initialize_decoder(self.embedding_decoder)
            initialize_head(self.embedding_head)
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.encoder_output_stride = encoder_output_stride

    @property
    def input_multiple(self) -> int:
        """Input height and width must be multiples of this number."""
        # the ASPP map (H/stride) upsampled ×stride/4 must match the stride-4 features exactly
        return self.encoder_output_stride

    @property
    def has_embedding(self) -> bool:
        """Whether H_s was built."""
        return self.embedding_decoder is not None

    def forward(self, x: Tensor, with_embedding: bool | None = None) -> dict[str, Tensor]:
        """(N, in_channels, H, W) → {"logits": (N, K, H, W), "embedding": (N, E, H/4, W/4)}.

        ``with_embedding`` None (default) computes the embedding whenever H_s exists; False skips it.

        Raises:
            ValueError: if H or W is not a multiple of :attr:`input_multiple`, or ``with_embedding=True`` on
                a model built without H_s.
        """
        if with_embedding is None:
            with_embedding = self.has_embedding
        if with_embedding and not self.has_embedding:
            raise ValueError("this model was built with with_embedding=False: it has no embedding head")
        height, width = x.shape[-2:]
        multiple = self.input_multiple
        if height % multiple or width % multiple:
            raise ValueError(f"input height and width must be multiples of {multiple}, got {(height, width)}")
        features = self.encode(x)
        out = {"logits": self.decode(features, (height, width))}
        if with_embedding and self.embedding_decoder is not None and self.embedding_head is not None:
            out["embedding"] = self.embedding_head(self.embedding_decoder(features))  # (N, E, H/4, W/4)
        return out

    def encode(self, x: Tensor) -> list[Tensor]:
        """The encoder's feature pyramid [x, /2, /4, /8, /16, /output_stride] that both decoders read."""
        return cast(Encoder, self.encoder).forward_pyramid(x)

    def decode(self, features: list[Tensor], size: tuple[int, int]) -> Tensor:
        """H_seg: class logits (N, K, *size) from :meth:`encode`'s features (perturbed ones too, as UniMatch does)."""
        seg = self.seg_decoder(features)  # (N, decoder_channels, H/4, W/4)
        # align_corners=True as smp's SegmentationHead
        return F.interpolate(self.seg_head(seg), size=size, mode="bilinear", align_corners=True)
