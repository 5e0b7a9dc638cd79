"""Optimisers with the parameter groups the methods need (encoder vs heads, no decay on bias and BN)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from lightly.utils.lars import LARS
from torch import nn

from marsvision.training.config import ConfigError, OptimConfig, RunConfig

FROZEN_BACKBONE_RATIO = 0.01
"""A backbone learning rate below this share of the heads' counts as frozen: paper 002 trains its pretrained
backbone at 1e-6 against 1e-3 (0.1 %), a gentle fine-tuning of good features, but random features stay random."""


def check_backbone_start(config: RunConfig) -> None:
    """Refuse a random encoder trained at a near-zero ``optim.backbone_lr``, unless the config says it is meant.

    Raises:
        ConfigError: no ``model.weights`` (nor ``model.weights_by_encoder`` entry for the encoder), a
            ``backbone_lr`` below ``FROZEN_BACKBONE_RATIO`` × ``lr`` and ``optim.allow_frozen_random_backbone``
            false; the message names the keys.
    """
    optim, model = config.optim, config.model
    if optim.backbone_lr is None or model.initial_weights or optim.allow_frozen_random_backbone:
        return
    if optim.backbone_lr < FROZEN_BACKBONE_RATIO * optim.lr:
        raise ConfigError(
            f"optim.backbone_lr={optim.backbone_lr:g} with model.weights=null trains a random {model.encoder} that "
            f"barely moves (optim.lr={optim.lr:g}): give model.weights=PATH (or model.weights_by_encoder."
            f"{model.encoder}=PATH), raise optim.backbone_lr, or set optim.allow_frozen_random_backbone=true"
        )


def _decay_split(params: Iterable[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Weights of conv/linear layers decay; biases and normalisation parameters do not (SimCLR, LARS)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in params:
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return decay, no_decay


FUSED_DEVICES = ("cpu", "cuda")


def _fused(params: list[nn.Parameter]) -> bool:
    """Whether torch's fused Adam/AdamW/SGD kernel can update ``params`` (float tensors on CPU or CUDA).

    The fused kernel updates every tensor in one pass instead of a Python loop of ~10 ops per tensor: on the
    CPU fine-tuning step it cuts the optimiser step from ~17 ms to ~3 ms, the largest cost marsvision's own
    loop controls (benchmarks/README.md, "Framework overhead"). Same update rule, float rounding aside.
    """
    return bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)


def _start_momentum(optimizer: torch.optim.SGD) -> None:
    """Give every parameter a zero momentum buffer up front.

    The fused SGD kernel needs all or none of a step's parameters to have a buffer, and stage-wise training
    (semi-supervised segmentation) gives the classifier its first gradient after the encoder has stepped.
    With dampening 0, buf = m·0 + g is torch's own first-step buf = g, so the updates are unchanged.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            optimizer.state[param]["momentum_buffer"] = torch.zeros_like(param)


def build_optimizer(
    config: OptimConfig, backbone: list[nn.Parameter], heads: list[nn.Parameter], pretrained: bool = False
) -> torch.optim.Optimizer:
    """Optimiser over ``backbone`` parameters and ``heads`` (at ``lr``).

    The backbone trains at ``pretrained_backbone_lr`` when it was ``pretrained`` and that is set, else at
    ``backbone_lr`` when set, else at ``lr``.
    """
    backbone_lr = config.backbone_lr or config.lr
    if pretrained and config.pretrained_backbone_lr is not None:
        backbone_lr = config.pretrained_backbone_lr
    groups = []
    for params, lr in ((backbone, backbone_lr), (heads, config.lr)):
        decay, no_decay = _decay_split(params)
        if decay:
            groups.append({"params": decay, "lr": lr, "weight_decay": config.weight_decay})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
    fused = _fused([*backbone, *heads])
    if config.name == "sgd":
        sgd = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, fused=fused)
        if fused and config.momentum:
            _start_momentum(sgd)
        return sgd
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, fused=fused)
    if config.name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, fused=fused)
    # lars: lightly's LARS skips the trust-ratio scaling where weight_decay is 0 (the bias/BN group above)
    return LARS(groups, lr=config.lr, momentum=config.momentum)
