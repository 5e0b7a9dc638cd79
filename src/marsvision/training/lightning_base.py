"""What every marsvision Lightning module shares: config in the checkpoint, optimiser and schedule wiring."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from torch import nn

from marsvision.training.config import RunConfig, from_dict, to_dict
from marsvision.training.optim import build_optimizer
from marsvision.training.schedules import lr_multiplier


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """Image batches (4-D floating point) in NHWC layout; labels and everything else unchanged."""
    if tensor.ndim == 4 and tensor.is_floating_point():
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


class MarsvisionModule(L.LightningModule):
    """Base module: keeps the resolved config (and class names) in ``hparams`` so a checkpoint is self-describing.

    Subclasses say which modules are the pretrained backbone and which are heads; the optimiser gives them
    ``optim.backbone_lr`` and ``optim.lr`` respectively, with the step-wise schedule from ``schedules.py``.
    """

    def __init__(
        self, config: RunConfig, class_names: list[str] | None = None, class_ids: list[int] | None = None
    ) -> None:
        super().__init__()
        self.config = config
        names = list(class_names or [])
        # class_ids: the dataset's own id of each class index (MSL v1 skips 22 'sun'), so predictions map back.
        ids = list(class_ids) if class_ids is not None else list(range(len(names)))
        self.save_hyperparameters({"config": to_dict(config), "class_names": names, "class_ids": ids})

    @classmethod
    def config_from_hparams(cls, hparams: dict[str, Any]) -> RunConfig:
        """Rebuild the typed config stored in a checkpoint's ``hyper_parameters``."""
        config: RunConfig = from_dict(RunConfig, hparams["config"])
        return config

    find_unused_parameters = False
    """DDP must look for parameters a step leaves unused (a head that only some stages or losses train)."""

    def total_epochs(self) -> int | None:
        """Epochs the method runs for, when the method (not ``trainer.max_epochs``) decides it."""
        return None

    def stage_of_epoch(self, epoch: int) -> str:
        """Name of the training stage an epoch belongs to (logged with every epoch's metrics)."""
        return "train"

    def backbone_modules(self) -> list[nn.Module]:
        """Modules trained at ``optim.backbone_lr`` (the encoder); every other parameter uses ``optim.lr``."""
        return []

    def on_fit_start(self) -> None:
        if self.config.trainer.channels_last:
            self.to(memory_format=torch.channels_last)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not self.config.trainer.channels_last:
            return batch
        return apply_to_collection(batch, torch.Tensor, _channels_last)

    def configure_optimizers(self) -> Any:
        backbone = [p for module in self.backbone_modules() for p in module.parameters()]
        backbone_ids = {id(p) for p in backbone}
        heads = [p for p in self.parameters() if id(p) not in backbone_ids]
        optimizer = build_optimizer(self.config.optim, backbone, heads)
        total_steps = int(self.trainer.estimated_stepping_batches)
        steps_per_epoch = max(total_steps // max(self.trainer.max_epochs or 1, 1), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(self.config.optim, steps_per_epoch, total_steps)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
