"""Lightning callbacks that make runs reproducible and leave their numbers in ``metrics.jsonl``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L

from marsvision.training.runs import append_metrics


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
            if not name or split not in ("train", "val") or name.endswith(("_step", "_epoch")):
                continue  # the _step/_epoch twins of a metric logged both ways; the plain key is the epoch value
            by_split.setdefault(split, {})[name] = float(value)
        epoch = trainer.current_epoch
        for split, values in sorted(by_split.items()):
            record = {"epoch": epoch, "step": trainer.global_step, "stage": self.stage_of_epoch(epoch)}
            record.update(split=split, **values)
            append_metrics(self.run_dir, record)
