"""Parameter counting, with BatchNorm statistics counted as Keras does, and model sizes built on ``meta``."""

from __future__ import annotations

import torch
from torch import nn

from marsvision.models.encoders import create_encoder
from marsvision.models.heads import HeadVariant
from marsvision.models.segmenter import AtrousSegmenter


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Count trainable parameters and BatchNorm running means + variances (not ``num_batches_tracked``).

    Keras reports BN's moving mean and variance as (non-trainable) parameters; papers built on TF (SimCLRv2,
    paper 000's 171,172,160) quote ``total_with_bn_stats``.
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            stats += module.running_mean.numel()
            stats += module.running_var.numel()  # type: ignore[union-attr]
    return {
        "trainable_params": trainable,
        "bn_running_stats": stats,
        "total_with_bn_stats": trainable + stats,
    }


def model_info(name: str, num_classes: int, head: HeadVariant = "paper", in_channels: int = 3) -> dict[str, object]:
    """Sizes of encoder ``name`` + atrous head with ``num_classes``, built on the meta device (no memory).

    Returns ``{"encoder", "num_classes", "head", "in_channels", "feature_channels", "encoder_counts",
    "trainable_params", "bn_running_stats", "total_with_bn_stats"}``; the last three are the whole model's.
    """
    with torch.device("meta"):
        encoder = create_encoder(name, in_channels=in_channels)
        model = AtrousSegmenter(encoder, num_classes, head_variant=head)
    return {
        "encoder": name,
        "num_classes": num_classes,
        "head": head,
        "in_channels": in_channels,
        "feature_channels": encoder.feature_channels,
        "encoder_counts": parameter_counts(encoder),
        **parameter_counts(model),
    }


__all__ = ["model_info", "parameter_counts"]
