"""Build the networks a config names: encoder from the registry, head, initial weights."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from torch import nn

from marsvision import runfolder
from marsvision.models.deeplabv3plus import DualHeadDeepLabV3Plus
from marsvision.models.encoders import create_encoder
from marsvision.models.heads import HeadVariant, ProjectionHead
from marsvision.models.segmenter import AtrousSegmenter
from marsvision.models.weights import WeightsKind, load_encoder_weights, load_projection_head_weights
from marsvision.training.config import RunConfig

ATROUS_HEADS = ("paper", "relu")
ATROUS_OUTPUT_STRIDE = 32
"""Paper 000's head sits on the SimCLRv2 encoder's last (stride-32) map."""
DEEPLABV3PLUS_OUTPUT_STRIDE = 16
"""DeepLabv3+'s default (Chen et al. 2018), as paper 002 uses it."""


def build_segmentation_model(config: RunConfig, num_classes: int, *, with_embedding: bool = False) -> nn.Module:
    """Encoder + segmentation head from ``config.model``; the encoder starts from ``model.initial_weights`` if any.

    ``head`` ``paper``/``relu`` puts paper 000's atrous block on a registry encoder; ``deeplabv3plus`` builds
    paper 002's DeepLabv3+ on a segmentation_models_pytorch encoder (``with_embedding`` adds the H_s decoder).
    """
    model_cfg = config.model
    model: nn.Module
    if with_embedding and model_cfg.head != "deeplabv3plus":
        raise ValueError(f"model.head={model_cfg.head!r} has no embedding decoder; semiseg needs deeplabv3plus")
    if model_cfg.head in ATROUS_HEADS:
        stride = model_cfg.output_stride or ATROUS_OUTPUT_STRIDE
        encoder = create_encoder(model_cfg.encoder, in_channels=config.data.channels, output_stride=stride)
        projection_head = _pretrained_projection_head(config, cast(int, encoder.feature_channels))
        model = AtrousSegmenter(
            encoder,
            num_classes=num_classes,
            head_variant=cast(HeadVariant, model_cfg.head),
            projection_head=projection_head,
            projection_layer=model_cfg.projection_layer,
        )
    elif model_cfg.projection_layer:
        raise ValueError(f"model.projection_layer needs paper 000's atrous head, not model.head={model_cfg.head!r}")
    else:  # deeplabv3plus
        model = DualHeadDeepLabV3Plus(
            encoder_name=model_cfg.encoder,
            in_channels=config.data.channels,
            num_classes=num_classes,
            embedding_dim=config.semiseg.embedding_dim,
            encoder_output_stride=model_cfg.output_stride or DEEPLABV3PLUS_OUTPUT_STRIDE,
            with_embedding=with_embedding,
        )
    if model_cfg.initial_weights:
        weights = resolve_weights(model_cfg.initial_weights, config.runs_root)
        load_encoder_weights(cast(nn.Module, model.encoder), weights, kind=cast(WeightsKind, model_cfg.weights_kind))
    return model


def _pretrained_projection_head(config: RunConfig, in_dim: int) -> ProjectionHead | None:
    """SimCLR's g with its pretrained weights when the task head sits on one of its layers, else None."""
    model_cfg = config.model
    if model_cfg.projection_layer == 0:
        return None
    if not model_cfg.initial_weights:
        raise ValueError("model.projection_layer > 0 puts the head on a pretrained g: give model.weights=PATH")
    head = ProjectionHead(in_dim, model_cfg.projection_dim, num_layers=model_cfg.projection_layers)
    load_projection_head_weights(head, resolve_weights(model_cfg.initial_weights, config.runs_root))
    return head


def resolve_weights(weights: str, runs_root: str) -> Path:
    """A weights path, or ``latest:<run name>``: the encoder of the newest run of that name under ``runs_root``.

    Sweeps write their runs into the sweep folder, so the parent of ``runs_root`` is searched as well. A run
    marked failed (``FAILED``) is skipped.
    """
    if not weights.startswith("latest:"):
        return Path(weights).expanduser()
    name = weights.removeprefix("latest:")
    roots = [Path(runs_root), Path(runs_root).parent, Path("runs")]
    encoders = {p.resolve() for root in roots for p in root.glob(f"{name}-*/{runfolder.ENCODER_FILE}")}
    candidates = sorted(
        (p for p in encoders if not (p.parent / runfolder.FAILED_FILE).exists()),
        key=lambda p: (p.stat().st_mtime, p.parent.name),
    )
    if not candidates:
        searched = ", ".join(str(r) for r in dict.fromkeys(roots))
        raise FileNotFoundError(f"latest:{name}: no {name}-*/encoder.pt under {searched}; run the pretraining first")
    return candidates[-1]
