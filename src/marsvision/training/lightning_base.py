"""What every marsvision Lightning module shares: config in the checkpoint, optimiser and schedule wiring."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from torch import nn

from marsvision.training.compilation import compile_networks
from marsvision.training.config import RunConfig, from_dict, to_dict
from marsvision.training.data import ClassInfo, Stream, Task
from marsvision.training.optim import build_optimizer
from marsvision.training.reproducibility import mixed_seed, step_generator
from marsvision.training.schedules import lr_multiplier
from marsvision.training.stream_views import StreamViews, batched_views

VIEW_DRAWS = 1
"""Mixed into the run's seed for the batched views' generator, so that their draws differ from those a method
makes from ``step_generator(seed, step, rank)`` in the same step."""


class NonFiniteLossError(ValueError):
    """A training step produced a NaN or infinite loss: the run stops instead of training on garbage."""


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 4 and tensor.is_floating_point():
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def images_channels_last(batch: Any) -> Any:
    """``batch`` with its images in NHWC layout (``trainer.channels_last``).

    Images are the 4-D floating point tensors, nested in dicts, lists and tuples; labels and the rest are unchanged.
    """
    return apply_to_collection(batch, torch.Tensor, _channels_last)


class MarsvisionModule(L.LightningModule):
    """Base of every method: one class per method, registered by name in :mod:`marsvision.training.registry`.

    A method declares what it needs as class attributes: its ``task`` (evaluation and prediction follow it), the
    data ``streams`` each step draws (:mod:`marsvision.training.data`), and ``loss_weights``, the config key that
    scales each loss part it logs. The resolved config and the class names live in ``hparams``, so a checkpoint
    is self-describing. Subclasses say which modules are the backbone (``optim.backbone_lr``); every other
    parameter trains at ``optim.lr`` with the step-wise schedule from ``schedules.py``.
    """

    task: ClassVar[Task]
    streams: ClassVar[tuple[Stream, ...]] = ("labeled",)
    loss_weights: ClassVar[dict[str, str]] = {}
    """Logged loss part → the config key of its weight in the total loss (e.g. ``classification.supervised_weight``)."""
    unweighted_part: ClassVar[str] = "ce"
    """The loss part the weighted ones are added to: L = L_unweighted + Σ weight(part) · L_part."""

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__()
        self.config = config
        self.classes = classes or ClassInfo()
        self.save_hyperparameters(
            {
                "config": to_dict(config),
                "class_names": list(self.classes.names),
                "class_ids": list(self.classes.ids),
                "samples_per_class": list(self.classes.samples_per_class),
            }
        )

    @property
    def num_classes(self) -> int:
        """K, the number of classes the model predicts."""
        return len(self.classes.names)

    @classmethod
    def config_from_hparams(cls, hparams: dict[str, Any]) -> RunConfig:
        """Rebuild the typed config stored in a checkpoint's ``hyper_parameters``."""
        config: RunConfig = from_dict(RunConfig, hparams["config"])
        return config

    def weight(self, part: str) -> float:
        """The weight of loss part ``part`` in the total: the config value named in :attr:`loss_weights`."""
        section, key = self.loss_weights[part].split(".")
        return float(getattr(getattr(self.config, section), key))

    def weighted_total(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """``parts[unweighted_part]`` + Σ weight(part) · parts[part] over :attr:`loss_weights`, in declared order."""
        total = parts[self.unweighted_part]
        for name in self.loss_weights:
            total = total + self.weight(name) * parts[name]
        return total

    def log_loss_parts(self, parts: dict[str, torch.Tensor], batch_size: int) -> torch.Tensor:
        """Log the step's total ``parts["loss"]`` and each other part (epoch means); return the total.

        A non-finite total stops the run with the step and every part's value in the message (as DINO does).
        Parts that are NaN by definition this step (a statistic with nothing to count) are not logged.
        """
        loss = parts["loss"]
        # one device sync for every part at once
        stacked = torch.stack([value.detach().float().reshape(()) for value in parts.values()]).cpu().tolist()
        values = dict(zip(parts, stacked, strict=True))
        if not math.isfinite(values["loss"]):
            listed = ", ".join(f"{name}={value:.4g}" for name, value in values.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {self.global_step} (epoch {self.current_epoch}): {listed}; "
                "lower optim.lr or check the inputs"
            )
        sync = self.trainer.world_size > 1  # log the mean over ranks: the loss DDP's averaged gradients follow
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=sync)
        for name, value in parts.items():
            if name != "loss" and math.isfinite(values[name]):
                self.log(f"train/{name}", value.detach(), on_epoch=True, batch_size=batch_size, sync_dist=sync)
        return loss

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

    def lr_schedule(self, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
        """Optimizer step → multiplier of the base learning rates: the config's schedule over the whole run.

        A method with stages of their own schedule (Decoupling's classifier re-training) overrides it.
        """
        return lr_multiplier(self.config.optim, steps_per_epoch, total_steps)

    def on_fit_start(self) -> None:
        if self.config.trainer.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.config.trainer.compile:
            compile_networks(self, self.device)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the device: the batched views of a training batch (``*.batched_views``), then the NHWC layout."""
        if self.trainer.training and batched_views(self.config, self.task):
            seed = mixed_seed(self.config.seed, VIEW_DRAWS)
            batch = StreamViews(self.config, self.task)(batch, step_generator(seed, self.global_step, self.global_rank))
        if not self.config.trainer.channels_last:
            return batch
        return images_channels_last(batch)

    def configure_optimizers(self) -> Any:
        backbone = [p for module in self.backbone_modules() for p in module.parameters()]
        backbone_ids = {id(p) for p in backbone}
        heads = [p for p in self.parameters() if id(p) not in backbone_ids]
        optimizer = build_optimizer(
            self.config.optim, backbone, heads, pretrained=bool(self.config.model.initial_weights)
        )
        total_steps = int(self.trainer.estimated_stepping_batches)
        steps_per_epoch = max(total_steps // max(self.trainer.max_epochs or 1, 1), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_schedule(steps_per_epoch, total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
