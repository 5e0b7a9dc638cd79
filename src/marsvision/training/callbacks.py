"""Lightning callbacks that leave a run's numbers in ``metrics.jsonl`` and show on stderr where the run is."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from tqdm import tqdm

from marsvision.evaluation.metric_names import is_fraction_metric, percent
from marsvision.training.runs import append_metrics

log = logging.getLogger(__name__)
"""The per-epoch lines; the command line shows this logger's INFO records on stderr."""


def epoch_metrics(trainer: L.Trainer) -> dict[str, dict[str, float]]:
    """The epoch values of ``train/*`` and ``val/*`` logged this epoch, by split (``{"val": {"acc": 0.37}}``)."""
    by_split: dict[str, dict[str, float]] = {}
    for key, value in trainer.callback_metrics.items():
        split, _, name = key.partition("/")
        if not name or split not in ("train", "val") or name.endswith(("_step", "_epoch")):
            continue  # the _step/_epoch twins of a metric logged both ways; the plain key is the epoch value
        by_split.setdefault(split, {})[name] = float(value)
    return by_split


class JsonlMetrics(L.Callback):
    """Write one JSON line per split at the end of every training epoch (validation included)."""

    def __init__(self, run_dir: Path, stage_of_epoch: Callable[[int], str] | None = None) -> None:
        self.run_dir = run_dir
        self.stage_of_epoch = stage_of_epoch or (lambda epoch: "train")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        for split, values in sorted(epoch_metrics(trainer).items()):
            record = {"epoch": epoch, "step": trainer.global_step, "stage": self.stage_of_epoch(epoch)}
            record.update(split=split, **values)
            append_metrics(self.run_dir, record)


def format_metrics(by_split: dict[str, dict[str, float]]) -> str:
    """``train/loss 0.832  val/loss 1.760  val/acc 37.0 %``: fractions in percent, the rest to 3 decimals."""
    parts = []
    for split, values in sorted(by_split.items(), key=lambda item: item[0] != "train"):
        for name, value in values.items():
            shown = f"{percent(value, 1)} %" if is_fraction_metric(name) else f"{value:.3f}"
            parts.append(f"{split}/{name} {shown}")
    return "  ".join(parts)


class ConsoleProgress(L.Callback):
    """Where a run is, on stderr: a live bar per epoch in a terminal, else one plain log line per epoch.

    Both name the epoch and, for a method with stages (paper 002's three), the stage: ``epoch 4/9 · stage 2/3:
    joint``, followed by the epoch's metrics. Only the first process of a distributed run reports.
    """

    def __init__(self, *, live: bool, stage_of_epoch: Callable[[int], str] | None = None) -> None:
        self.live = live
        self.stage_of_epoch = stage_of_epoch
        self.stages: list[str] = []
        self.bar: Any = None
        self.started = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stage_of_epoch is not None and trainer.max_epochs is not None and trainer.max_epochs > 0:
            names = [self.stage_of_epoch(epoch) for epoch in range(trainer.max_epochs)]
            self.stages = list(dict.fromkeys(names))

    def title(self, trainer: L.Trainer) -> str:
        """``epoch 4/9`` (1-based) and, with several stages, ``· stage 2/3: joint``."""
        epoch = trainer.current_epoch
        text = f"epoch {epoch + 1}/{trainer.max_epochs}"
        if len(self.stages) > 1 and self.stage_of_epoch is not None:
            stage = self.stage_of_epoch(epoch)
            text += f" · stage {self.stages.index(stage) + 1}/{len(self.stages)}: {stage}"
        return text

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        if self.live and trainer.is_global_zero:
            batches = trainer.num_training_batches
            self.bar = tqdm(
                total=batches if math.isfinite(batches) else None,
                desc=self.title(trainer),
                unit="batch",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.bar is not None:
            self.bar.update(1)
            loss = trainer.callback_metrics.get("train/loss_step")
            if loss is not None:
                self.bar.set_postfix_str(f"loss {float(loss):.3f}", refresh=False)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = format_metrics(epoch_metrics(trainer))
        if self.bar is not None:
            self.bar.set_postfix_str(metrics)
            self.bar.close()
            self.bar = None
        else:
            seconds = time.perf_counter() - self.started
            log.info(f"{self.title(trainer)}  {metrics}  ({seconds:.1f} s)")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
