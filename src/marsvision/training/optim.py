"""Optimisers with the parameter groups the methods need (encoder vs heads, no decay on bias and BN)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from lightly.utils.lars import LARS
from torch import nn

from marsvision.training.config import OptimConfig


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
    config: OptimConfig, backbone: list[nn.Parameter], heads: list[nn.Parameter]
) -> torch.optim.Optimizer:
    """Optimiser over ``backbone`` parameters (at ``backbone_lr`` when set) and ``heads`` (at ``lr``)."""
    groups = []
    for params, lr in ((backbone, config.backbone_lr or config.lr), (heads, config.lr)):
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
