"""Lightning callbacks that make runs reproducible and leave their numbers in ``metrics.jsonl``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.seed import seed_everything

from marsvision.training.runs import append_metrics


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of one epoch: a pure function of (run seed, epoch), so a resumed run replays the same randomness."""
    return (seed * 1_000_003 + epoch) % (2**31 - 1)


class EpochReseed(L.Callback):
    """Reseed every RNG at the start of each epoch from (seed, epoch).

    Lightning creates the epoch's data iterator after ``on_train_epoch_start``, so shuffling and augmentation
    (with ``num_workers=0``, or workers seeded from the same generator) depend only on the epoch number: a run
    resumed from an end-of-epoch checkpoint reproduces the uninterrupted run's next losses exactly.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seed_everything(epoch_seed(self.seed, trainer.current_epoch), workers=True, verbose=False)


class JsonlMetrics(L.Callback):
    """Write one JSON line per split at the end of every training epoch (validation included)."""

    def __init__(self, run_dir: Path, stage_of_epoch: Callable[[int], str] | None = None) -> None:
        self.run_dir = run_dir
        self.stage_of_epoch = stage_of_epoch or (lambda epoch: "train")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        by_split: dict[str, dict[str, Any]] = {}
        for key, value in trainer.callback_metrics.items():
            split, _, name = key.partition("/")
            if not name or split not in ("train", "val"):
                continue
            by_split.setdefault(split, {})[name] = float(value)
        epoch = trainer.current_epoch
        for split, values in sorted(by_split.items()):
            record = {"epoch": epoch, "step": trainer.global_step, "stage": self.stage_of_epoch(epoch)}
            record.update(split=split, **values)
            append_metrics(self.run_dir, record)
