"""A callback that crashes a run at the start of an epoch, to test that ``--resume`` replays it exactly."""

from __future__ import annotations

import lightning as L


class CrashError(RuntimeError):
    pass


class CrashAtEpoch(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise CrashError(f"simulated crash at the start of epoch {self.epoch}")
