"""BatchNorm running statistics that only clean images update.

A training step may push extra, deliberately perturbed batches through the network (strong views, dropped-out
features). In training mode BatchNorm normalises them with their own batch statistics, as it should, but it would
also fold those statistics into the running averages that evaluation uses: the model is then tested with the
statistics of jittered, blurred, mixed images. Inside :func:`running_statistics_frozen` every BatchNorm layer
keeps normalising with batch statistics and leaves its running averages as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def running_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Set every BatchNorm's momentum to 0 (running = 1·running + 0·batch) for the block, then restore it."""
    layers = [layer for layer in module.modules() if isinstance(layer, _BatchNorm) and layer.track_running_stats]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
