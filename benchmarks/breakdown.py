"""Where a training epoch's time goes, per step kind: data, forward, backward, optimiser, hooks and checkpointing.

Each step kind of :mod:`benchmarks.pipelines` trains two epochs through marsvision's own pipeline (decode,
augmentation, step, every hook) under Lightning's ``SimpleProfiler``, once as marsvision was before issue #16
(``today``) and once with the ``fast`` switches. The second epoch is broken down from the profiler's records:

- ``data``: ``train_dataloader_next``, reading, decoding and augmenting a batch (``num_workers: 0``, the CPU
  recipes' setting, so the loader's work is on the training thread);
- ``forward``: the strategy's ``training_step``, the networks' forward passes and losses;
- ``backward``: the strategy's ``backward``;
- ``optimizer``: the module's ``optimizer_step`` without the forward and backward closure it runs, plus
  ``optimizer_zero_grad``;
- ``checkpoint``: ``save_checkpoint`` (the epoch's ``last.ckpt``, written by an epoch-end hook);
- ``hooks_and_logging``: the rest of the epoch: ``on_after_batch_transfer`` (where batched views and the NHWC
  conversion run, so ``fast`` moves the views' cost from ``data`` to here), callbacks, metric logging, the loop.

The shares add up to the epoch's wall time (``run_training_epoch`` and the epoch-end hooks). The profiler's own
cost is a few microseconds per record, far below a step.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import device_for, quiet_lightning
from benchmarks.pipelines import KINDS, describe, kind_config, steps_for, switches_for, synthetic_folder

VARIANTS = ("today", "fast")
PARTS = ("data", "forward", "backward", "optimizer", "checkpoint", "hooks_and_logging")
"""The parts an epoch is broken into, in the order they are reported."""


def _last(durations: dict[str, list[float]], prefix: str, suffix: str, count: int) -> float:
    """Seconds of the last ``count`` records (the timed epoch's) of every action named ``prefix…suffix``."""
    return sum(
        sum(records[-count:])
        for action, records in durations.items()
        if action.startswith(prefix) and action.endswith(suffix)
    )


def epoch_breakdown(durations: dict[str, list[float]], steps: int) -> dict[str, float]:
    """The timed (last) epoch's seconds per part, from ``SimpleProfiler.recorded_durations``.

    The epoch is ``run_training_epoch`` plus the epoch-end hooks that run after it (where the checkpoint is saved);
    the module's ``optimizer_step`` runs the forward and backward closure inside it, so they are taken out of it.
    """
    forward = _last(durations, "[Strategy]", ".training_step", steps)
    backward = _last(durations, "[Strategy]", ".backward", steps)
    optimizer_step = _last(durations, "[LightningModule]", ".optimizer_step", steps)
    parts = {
        "data": _last(durations, "[_TrainingEpochLoop]", ".train_dataloader_next", steps),
        "forward": forward,
        "backward": backward,
        "optimizer": optimizer_step
        - forward
        - backward
        + _last(durations, "[LightningModule]", ".optimizer_zero_grad", steps),
        "checkpoint": _last(durations, "save_checkpoint", "", 1),
    }
    epoch = _last(durations, "run_training_epoch", "", 1) + _last(durations, "[", ".on_train_epoch_end", 1)
    parts["hooks_and_logging"] = epoch - sum(parts.values())
    return parts


def profile_kind(config: Any, steps: int) -> dict[str, Any]:
    """Train ``config`` for two epochs under the profiler; the second epoch's breakdown in ms per step and shares."""
    from lightning.pytorch.profilers import SimpleProfiler

    from marsvision.training.api import build_module_and_data
    from marsvision.training.trainer import build_trainer

    with quiet_lightning(), tempfile.TemporaryDirectory() as run_dir:
        module, data = build_module_and_data(config)
        profiler = SimpleProfiler(dirpath=run_dir, filename="profile")  # its text summary stays in the temp folder
        trainer = build_trainer(config, Path(run_dir), has_validation=False, profiler=profiler)
        trainer.fit(module, train_dataloaders=data.train)
    seconds = epoch_breakdown(profiler.recorded_durations, steps)
    epoch = sum(seconds.values())
    return {
        "epoch_s": epoch,
        "step_ms": 1e3 * epoch / steps,
        "ms_per_step": {part: 1e3 * value / steps for part, value in seconds.items()},
        "share": {part: value / epoch for part, value in seconds.items()},
    }


def run(size: str) -> dict:
    device = device_for(size)
    steps = steps_for(size)
    results: dict[str, Any] = {"device": device.type, "steps_per_epoch": steps}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind in KINDS:
            folder = synthetic_folder(kind, size, root, steps)
            switches = switches_for(kind)
            configs = {v: kind_config(kind, size, folder, root / "cache", steps, switches[v]) for v in VARIANTS}
            results[kind] = {
                **describe(configs["today"]),
                **{variant: profile_kind(config, steps) for variant, config in configs.items()},
            }
    return results
