"""Supervised segmentation: the fine-tuning stage of paper 000 and the plain-supervised baselines."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.evaluation.confusion import ConfusionMatrix
from marsvision.evaluation.metrics import segmentation_metrics
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Task
from marsvision.training.factory import build_segmentation_model
from marsvision.training.lightning_base import MarsvisionModule


def inverse_sqrt_frequency_weights(pixels_per_class: list[int]) -> torch.Tensor:
    """w_c ∝ 1/√f_c from labeled pixel counts, scaled so that Σ_c f_c w_c = 1 (absent classes: 1).

    With weight w, ``F.cross_entropy`` divides by Σ w_{y_i}; scaling w to a pixel-weighted mean of 1 keeps that sum
    near the pixel count, so the loss keeps the unweighted loss's scale.
    """
    counts = torch.tensor(pixels_per_class, dtype=torch.float64)
    if counts.sum() <= 0:
        raise ValueError("class weighting needs labeled pixels: the labeled set has none")
    frequency = counts / counts.sum()
    weights = torch.where(frequency > 0, frequency.clamp(min=1e-12).rsqrt(), torch.zeros_like(frequency))
    weights = weights / (frequency * weights).sum()
    return torch.where(frequency > 0, weights, torch.ones_like(weights)).float()


class SegmentationModule(MarsvisionModule):
    """Pixel-wise cross-entropy ignoring unlabeled pixels (no class weighting, SPEC Method A 'Loss').

    The fine-tuning of paper 000 and the supervised baseline of paper 002 (``method: seg-supervised``).
    """

    task: ClassVar[Task] = "segmentation"
    with_embedding: ClassVar[bool] = False
    """Whether the network also returns the H_s embedding (the semi-supervised subclass needs it)."""
    class_weights: torch.Tensor | None

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.model = build_segmentation_model(config, self.num_classes, with_embedding=self.with_embedding)
        weights = None
        if config.segmentation.class_weighting == "inverse-sqrt-frequency":
            weights = inverse_sqrt_frequency_weights(self.classes.samples_per_class)
        self.register_buffer("class_weights", weights, persistent=False)  # rebuilt from hparams on load
        self.val_confusion = ConfusionMatrix(self.num_classes)

    def labeled_cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The cross-entropy of labeled pixels (255 ignored), class-weighted as ``segmentation.class_weighting``."""
        weight = None if self.class_weights is None else self.class_weights.to(logits.dtype)
        return F.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE_INDEX)

    def backbone_modules(self) -> list[nn.Module]:
        return [cast(nn.Module, self.model.encoder)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(images)["logits"]  # (N, K, H, W)
        return logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        labeled = batch["labeled"]
        loss = self.labeled_cross_entropy(self(labeled["image"]), labeled["label"])
        return self.log_loss_parts({"loss": loss}, batch_size=len(labeled["image"]))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["label"], ignore_index=IGNORE_INDEX)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(logits), sync_dist=True)
        self.val_confusion.update(pred=logits.argmax(1), target=batch["label"])

    def on_validation_epoch_end(self) -> None:
        metrics = segmentation_metrics(self.val_confusion.compute(), list(self.hparams["class_names"]))
        self.log("val/acc", metrics["acc"], prog_bar=True)
        self.log("val/miou", metrics["miou"])
        self.val_confusion.reset()
