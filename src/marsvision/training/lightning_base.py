"""What every marsvision Lightning module shares: config in the checkpoint, optimiser and schedule wiring."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from marsvision.training.config import RunConfig, from_dict, to_dict
from marsvision.training.optim import build_optimizer
from marsvision.training.schedules import lr_multiplier


class MarsvisionModule(L.LightningModule):
    """Base module: keeps the resolved config (and class names) in ``hparams`` so a checkpoint is self-describing.

    Subclasses say which modules are the pretrained backbone and which are heads; the optimiser gives them
    ``optim.backbone_lr`` and ``optim.lr`` respectively, with the step-wise schedule from ``schedules.py``.
    """

    def __init__(self, config: RunConfig, class_names: list[str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.save_hyperparameters({"config": to_dict(config), "class_names": list(class_names or [])})

    @classmethod
    def config_from_hparams(cls, hparams: dict[str, Any]) -> RunConfig:
        """Rebuild the typed config stored in a checkpoint's ``hyper_parameters``."""
        config: RunConfig = from_dict(RunConfig, hparams["config"])
        return config

    def backbone_modules(self) -> list[nn.Module]:
        """Modules trained at ``optim.backbone_lr`` (the encoder); the rest of the module uses ``optim.lr``."""
        return []

    def head_modules(self) -> list[nn.Module]:
        backbone_ids = {id(m) for m in self.backbone_modules()}
        return [m for name, m in self.named_children() if id(m) not in backbone_ids and name != "loss_fn"]

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.config.optim, self.backbone_modules(), self.head_modules())
        total_steps = int(self.trainer.estimated_stepping_batches)
        steps_per_epoch = max(total_steps // max(self.trainer.max_epochs or 1, 1), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(self.config.optim, steps_per_epoch, total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
