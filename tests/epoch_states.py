"""A callback that records a module's state at the end of every epoch and the learning rate of every step."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch


class StateAtEpochEnds(L.Callback):
    """Copies of the module's state dict before training and at the end of every epoch, and the last parameter
    group's learning rate at every step."""

    def __init__(self) -> None:
        self.initial: dict[str, torch.Tensor] = {}
        self.states: list[dict[str, torch.Tensor]] = []
        self.lrs: list[float] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.initial = copy.deepcopy(pl_module.state_dict())

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[-1]["lr"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.states.append(copy.deepcopy(pl_module.state_dict()))


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], prefix: str) -> set[str]:
    """The entries under ``prefix`` that differ between two state dicts."""
    return {k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])}


def record_epochs(monkeypatch: Any) -> StateAtEpochEnds:
    """A recorder that the next ``api.train`` call of the test installs in its trainer."""
    from marsvision.training import api
    from marsvision.training.trainer import build_trainer

    recorder = StateAtEpochEnds()

    def with_recorder(*args: Any, **kwargs: Any) -> Any:
        kwargs["extra_callbacks"] = [recorder]
        return build_trainer(*args, **kwargs)

    monkeypatch.setattr(api, "build_trainer", with_recorder)
    return recorder
