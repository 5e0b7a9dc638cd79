"""SupCon as Khosla et al. 2020 train it: representation first, classifier after (paper 002, Table 3).

Paper 002 tests "two training policies: unfreezing a linear classifier with a frozen model base (originally used
in [26]) and jointly fine-tuning all layers", both after SupCon's representation learning, with "training
samples [selected] by random" (not class-balanced). One run holds both stages (``clsbaseline.supcon_stage_epochs``):

1. **representation**: random batches of the labeled stream, two strong views of each image made on the device
   (paper 002's view augmentation, drawn from ``step_generator``), the SupCon loss L_out on the H_s embeddings,
   τ = ``clsbaseline.supcon_temperature``; the classifier H_cls does not train;
2. **classifier**: the cross-entropy on the labeled stream, either on the frozen backbone (``cls-supcon-linear``:
   B in eval mode and without gradient, only H_cls trains) or on every layer (``cls-supcon-all-layers``), the
   learning rate restarting at ``optim.lr`` along a cosine to 0 (the stage schedule of Decoupling).

``cls-supcon`` is the other reading: SupCon on class-balanced pairs next to the cross-entropy, in one stage.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.losses.supcon import supcon_loss
from marsvision.training.batch_views import BatchViews
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.decoupling import STAGES, DecouplingClassification
from marsvision.training.reproducibility import mixed_seed, step_generator
from marsvision.training.stream_views import strong_view

SUPCON_VIEW_DRAWS = 2
"""Mixed into the run's seed for the generator of stage 1's views (apart from every other draw of the step)."""


class SupConLinearClassifier(DecouplingClassification):
    """Stage 1 SupCon, stage 2 a linear classifier on the frozen backbone (``cls-supcon-linear``)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled",)
    stage_epochs_key: ClassVar[str] = "supcon_stage_epochs"

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.views = BatchViews(strong_view(config))

    def stage_two_parameters(self) -> list[nn.Parameter]:
        return list(self.model.classifier.parameters())

    def supcon_parts(self, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """L_out over two strong views of each image of a random labeled batch (N, C, H, W)."""
        generator = step_generator(mixed_seed(self.config.seed, SUPCON_VIEW_DRAWS), self.global_step, self.global_rank)
        views = [self.views(images, generator) for _ in range(2)]
        z = torch.stack([F.normalize(self.model.embed_supervised(view), dim=1) for view in views], dim=1)  # (N, 2, D)
        loss = supcon_loss(z, targets, temperature=self.config.clsbaseline.supcon_temperature)
        return {"supcon": loss, "loss": loss}

    def classifier_logits(self, images: Tensor) -> Tensor:
        """Stage 2's logits (N, K): H_cls on the frozen backbone's features."""
        self.model.encoder.eval()  # the representation is fixed: no BatchNorm statistics either
        with torch.no_grad():
            features = self.model.encoder(images)  # (N, F)
        logits: Tensor = self.model.classifier(features)
        return logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images, targets = batch["labeled"]["image"], batch["labeled"]["label"]
        if self.stage_of_epoch(self.current_epoch) == STAGES[0]:
            parts = self.supcon_parts(images, targets)
        else:
            parts = {"ce": F.cross_entropy(self.classifier_logits(images), targets)}
            parts["loss"] = parts["ce"]
        return self.log_loss_parts(parts, batch_size=len(images))


class SupConAllLayers(SupConLinearClassifier):
    """Stage 1 SupCon, stage 2 the cross-entropy fine-tuning every layer (``cls-supcon-all-layers``)."""

    def stage_two_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def classifier_logits(self, images: Tensor) -> Tensor:
        return self(images)
