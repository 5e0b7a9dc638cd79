"""The global batch and the learning rate that follows it, fixed before a run builds its data.

A recipe may state the batch over all devices (``data.global_batch_size``), as SimCLR does, and the learning rate
per 256 images of it (``optim.lr_per_256``: SimCLR's LARS rule lr = 0.3 × batch / 256). Both resolve here, from
the devices the run asks for, into the per-device ``data.batch_size`` the loaders use and the ``optim.lr`` the
optimiser uses; the run directory's ``config.yaml`` then holds the values the run really had.
"""

from __future__ import annotations

import copy

from marsvision.training.config import ConfigError, RunConfig

LR_REFERENCE_BATCH = 256
"""The batch ``optim.lr_per_256`` refers to (Goyal et al. 2017; SimCLR, Chen et al. 2020: lr = 0.3 × batch/256)."""


def world_size(config: RunConfig) -> int:
    """Processes that train together: ``trainer.devices`` × ``trainer.num_nodes``."""
    return config.trainer.devices * config.trainer.num_nodes


def resolve_batch_and_lr(config: RunConfig) -> RunConfig:
    """A copy of ``config`` with ``data.batch_size`` and ``optim.lr`` resolved from the global batch (idempotent).

    Raises:
        ConfigError: ``data.global_batch_size`` does not divide evenly over the devices.
    """
    resolved = copy.deepcopy(config)
    data, optim = resolved.data, resolved.optim
    world = world_size(resolved)
    if data.global_batch_size is not None:
        if data.global_batch_size % world:
            raise ConfigError(
                f"data.global_batch_size={data.global_batch_size} does not divide over {world} devices "
                "(trainer.devices × trainer.num_nodes)"
            )
        data.batch_size = data.global_batch_size // world
    if optim.lr_per_256 is not None:
        optim.lr = optim.lr_per_256 * data.batch_size * world / LR_REFERENCE_BATCH
    return resolved
