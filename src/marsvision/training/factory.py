"""Build the networks a config names: encoder from the registry, head, initial weights."""

from __future__ import annotations

from torch import nn

from marsvision.models.deeplabv3plus import DualHeadDeepLabV3Plus
from marsvision.models.encoders import create_encoder
from marsvision.models.segmenter import AtrousSegmenter
from marsvision.models.weights import load_encoder_weights
from marsvision.training.config import RunConfig

ATROUS_HEADS = ("paper", "relu")


def build_segmentation_model(config: RunConfig, num_classes: int, *, with_embedding: bool = False) -> nn.Module:
    """Encoder + segmentation head from ``config.model``; the encoder starts from ``model.weights`` if given.

    ``head`` ``paper``/``relu`` puts paper 000's atrous block on a registry encoder; ``deeplabv3plus`` builds
    paper 002's DeepLabv3+ on a segmentation_models_pytorch encoder (``with_embedding`` adds the H_s decoder).
    """
    model_cfg = config.model
    model: nn.Module
    if model_cfg.head in ATROUS_HEADS:
        encoder = create_encoder(model_cfg.encoder, in_channels=config.data.channels)
        model = AtrousSegmenter(encoder, num_classes=num_classes, head_variant=model_cfg.head)
    elif model_cfg.head == "deeplabv3plus":
        model = DualHeadDeepLabV3Plus(
            encoder_name=model_cfg.encoder,
            in_channels=config.data.channels,
            num_classes=num_classes,
            embedding_dim=config.semiseg.embedding_dim,
            with_embedding=with_embedding,
        )
    else:
        raise ValueError(f"unknown head {model_cfg.head!r}; choose {', '.join((*ATROUS_HEADS, 'deeplabv3plus'))}")
    if model_cfg.weights:
        load_encoder_weights(model.encoder, model_cfg.weights, kind=model_cfg.weights_kind)
    return model
