"""BatchNorm running statistics that only clean images update.

A training step may push extra, deliberately perturbed batches through the network (strong views, dropped-out
features). In training mode BatchNorm normalises them with their own batch statistics, as it should, but it would
also fold those statistics into the running averages that evaluation uses: the model is then tested with the
statistics of jittered, blurred, mixed images. Inside :func:`running_statistics_frozen` every BatchNorm layer
keeps normalising with batch statistics and leaves its running averages as they are.
:func:`recompute_running_statistics` replaces a trained model's running averages by those of given images, to
check how much the statistics it ended with cost it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def _momentum_set(module: nn.Module, momentum: float | None) -> Iterator[list[_BatchNorm]]:
    """Every tracking BatchNorm of ``module`` at ``momentum`` for the block (yielded), then its own again."""
    layers = [layer for layer in module.modules() if isinstance(layer, _BatchNorm) and layer.track_running_stats]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = momentum
    try:
        yield layers
    finally:
        for layer, kept in zip(layers, saved, strict=True):
            layer.momentum = kept


@contextmanager
def running_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Set every BatchNorm's momentum to 0 (running = 1·running + 0·batch) for the block, then restore it."""
    with _momentum_set(module, 0.0):
        yield


@torch.no_grad()
def recompute_running_statistics(module: nn.Module, images: Iterable[torch.Tensor]) -> None:
    """Replace every BatchNorm's running mean and variance by their average over the batches of ``images``.

    Each layer is reset and set to a cumulative average (momentum None) for the pass, so the result does not
    depend on the order of the batches, then its momentum is restored; the module ends in eval mode.
    """
    with _momentum_set(module, None) as layers:
        for layer in layers:
            layer.reset_running_stats()
        module.train()
        try:
            for batch in images:
                module(batch)
        finally:
            module.eval()
