"""Table 3 baselines of paper 002 that change or add one loss (``classification.py`` has the rest of the family).

Each trains the network of :class:`~marsvision.training.classification.CrossEntropyClassification` on the same
data and schedule; the settings are the ``clsbaseline`` config section, whose defaults are the original papers':

* ``cls-center``: L_ce + λ L_C, the center loss of Wen et al. 2016 on the pooled backbone features (the features
  H_cls reads), centers following Wen et al.'s update after every step;
* ``cls-triplet``: L_ce + w L_triplet, the triplet loss of Schroff et al. 2015 on the L2-normalised H_s embedding
  of the class-balanced stream (two different images of every class, so every class has a positive pair in the
  batch, as FaceNet samples several faces per identity);
* ``cls-ldam-drw``: the LDAM loss of Cao et al. 2019 on a cosine H_cls, with deferred re-weighting from epoch
  ``drw_epoch`` on (Cui et al.'s class-balanced weights, β = ``drw_beta``). Logged as ``ce``, the supervised
  loss, as the focal and class-balanced baselines do.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from marsvision.losses.center import CenterLoss
from marsvision.losses.class_balanced import class_balanced_weights
from marsvision.losses.ldam import LDAMLoss
from marsvision.losses.triplet import TripletLoss
from marsvision.models.classifier_heads import CosineLinear
from marsvision.training.classification import CrossEntropyClassification
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream


class CenterLossClassification(CrossEntropyClassification):
    """L_ce + λ L_C (Wen et al. 2016): features pulled towards their class centers (``method: cls-center``)."""

    loss_weights: ClassVar[dict[str, str]] = {"center": "clsbaseline.center_weight"}

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.center_loss = CenterLoss(
            self.num_classes, self.model.feature_channels, alpha=config.clsbaseline.center_alpha
        )

    def labeled_parts(self, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
        outputs = self.model(images)
        parts = {
            "ce": F.cross_entropy(outputs["logits"], targets),
            "center": self.center_loss(outputs["features"], targets),
        }
        self.center_loss.update(outputs["features"], targets)
        return parts


class TripletClassification(CrossEntropyClassification):
    """L_ce + w L_triplet (Schroff et al. 2015) on the class-balanced pairs (``method: cls-triplet``)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "balanced")
    loss_weights: ClassVar[dict[str, str]] = {"triplet": "clsbaseline.triplet_weight"}

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.triplet_loss = TripletLoss(config.clsbaseline.triplet_margin, config.clsbaseline.triplet_mining)

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        balanced = batch["balanced"]
        return {"triplet": self.triplet_loss(self.model.embed_supervised(balanced["image"]), balanced["label"])}


class LDAMDRWClassification(CrossEntropyClassification):
    """LDAM loss on a cosine H_cls with deferred re-weighting (Cao et al. 2019; ``method: cls-ldam-drw``)."""

    drw_weights: Tensor

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        cfg = config.clsbaseline
        if cfg.drw_epoch < 0:
            raise ValueError(f"clsbaseline.drw_epoch must be ≥ 0, got {cfg.drw_epoch}")
        counts = self.classes.samples_per_class or [1] * self.num_classes
        self.model.classifier = CosineLinear(self.model.feature_channels, self.num_classes)
        self.ldam = LDAMLoss(counts, max_margin=cfg.ldam_max_margin, scale=cfg.ldam_scale)
        self.register_buffer("drw_weights", class_balanced_weights(counts, beta=cfg.drw_beta).float())

    def class_weights(self, epoch: int) -> Tensor | None:
        """DRW's class weights at ``epoch``: None before ``drw_epoch``, the class-balanced weights from it on."""
        return self.drw_weights if epoch >= self.config.clsbaseline.drw_epoch else None

    def supervised_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        return self.ldam(self(images), targets, weight=self.class_weights(self.current_epoch))
