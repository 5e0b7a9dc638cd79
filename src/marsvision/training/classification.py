"""Method B classification (paper 002 §4) and the Table 3 baselines on one trainer.

Each step draws up to three streams: a labeled batch for the classification loss, a class-balanced batch
(two different images of every class) for the inter-class contrastive loss L_s, and an unlabeled batch (two
views of each image) for the similarity loss L_u. ``classification.loss`` picks the method.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from marsvision.evaluation.confusion import ConfusionMatrix
from marsvision.evaluation.metrics import classification_metrics
from marsvision.losses.class_balanced import class_balanced_loss
from marsvision.losses.focal import focal_loss
from marsvision.losses.inter_class import inter_class_contrastive_loss
from marsvision.losses.similarity import similarity_loss
from marsvision.losses.supcon import supcon_loss
from marsvision.models.classifier import SemiSupervisedClassifier
from marsvision.models.encoders import create_encoder
from marsvision.models.weights import WeightsKind, load_encoder_weights
from marsvision.training.config import RunConfig
from marsvision.training.lightning_base import MarsvisionModule

LOSSES = ("ours", "ce", "focal", "class-balanced", "supcon", "pseudo-label", "mixup", "cutmix")
STREAMS_OF_LOSS = {
    "ours": ("labeled", "balanced", "unlabeled"),
    "supcon": ("labeled", "balanced"),
    "pseudo-label": ("labeled", "unlabeled"),
}


def streams_for(loss: str) -> tuple[str, ...]:
    """The data streams a classification loss consumes."""
    if loss not in LOSSES:
        raise ValueError(f"unknown classification.loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return STREAMS_OF_LOSS.get(loss, ("labeled",))


def mix_batch(images: torch.Tensor, mode: str, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """MixUp (Zhang et al. 2018) or CutMix (Yun et al. 2019): mixed images, partner order, label weight λ.

    λ ~ Beta(α, α); for CutMix the box covers 1 − λ of the image and λ is recomputed from the clipped box.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(images))
    if mode == "mixup":
        return lam * images + (1 - lam) * images[order], order, lam
    height, width = images.shape[-2:]
    cut_h, cut_w = int(height * (1 - lam) ** 0.5), int(width * (1 - lam) ** 0.5)
    top = int(torch.randint(0, height - cut_h + 1, (1,)))
    left = int(torch.randint(0, width - cut_w + 1, (1,)))
    mixed = images.clone()
    mixed[..., top : top + cut_h, left : left + cut_w] = images[order][..., top : top + cut_h, left : left + cut_w]
    return mixed, order, 1 - cut_h * cut_w / (height * width)


class ClassificationModule(MarsvisionModule):
    """Backbone B + linear H_cls, with MLP heads H_s and H_u used only by the contrastive losses."""

    find_unused_parameters = True  # H_s and H_u sit idle under the losses that do not use them

    def __init__(
        self,
        config: RunConfig,
        class_names: list[str],
        samples_per_class: list[int] | None = None,
        class_ids: list[int] | None = None,
    ) -> None:
        super().__init__(config, class_names, class_ids)
        self.save_hyperparameters({"samples_per_class": list(samples_per_class or [])})
        self.num_classes = len(class_names)
        encoder = create_encoder(config.model.encoder, in_channels=config.data.channels)
        if config.model.weights:
            load_encoder_weights(encoder, config.model.weights, kind=cast(WeightsKind, config.model.weights_kind))
        self.model = SemiSupervisedClassifier(encoder, self.num_classes, projection_dim=config.model.projection_dim)
        self.samples_per_class = list(samples_per_class or [])
        self.streams = streams_for(config.classification.loss)
        self.val_confusion = ConfusionMatrix(self.num_classes)

    def backbone_modules(self) -> list[nn.Module]:
        # Paper 002 trains B, H_s and H_u at 1e-6 and only H_cls at 1e-3 (backbone_lr vs lr).
        return [self.model.encoder, self.model.supervised_head, self.model.unsupervised_head]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(images)["logits"]
        return logits

    def classification_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cfg = self.config.classification
        if cfg.loss == "focal":
            return focal_loss(logits, targets, gamma=cfg.focal_gamma)
        if cfg.loss == "class-balanced":
            counts = torch.tensor(self.samples_per_class, dtype=torch.float)
            return class_balanced_loss(logits, targets, counts, beta=cfg.class_balanced_beta)
        return F.cross_entropy(logits, targets)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        cfg = self.config.classification
        images, targets = batch["labeled"]["image"], batch["labeled"]["label"]
        log: dict[str, torch.Tensor] = {}
        if cfg.loss in ("mixup", "cutmix"):
            mixed, order, lam = mix_batch(images, cfg.loss, cfg.mix_alpha)
            logits = self(mixed)
            loss = lam * F.cross_entropy(logits, targets) + (1 - lam) * F.cross_entropy(logits, targets[order])
        else:
            loss = self.classification_loss(self(images), targets)
        log["ce"] = loss.detach()
        if "balanced" in self.streams:
            balanced = batch["balanced"]
            first, second = balanced["image"][0::2], balanced["image"][1::2]  # two different images per class
            z1 = self.model.embed_supervised(first)  # (C, D)
            z2 = self.model.embed_supervised(second)
            if cfg.loss == "supcon":
                features = torch.stack([F.normalize(z1, dim=1), F.normalize(z2, dim=1)], dim=1)  # (C, 2, D)
                contrastive = supcon_loss(features, balanced["label"][0::2], temperature=cfg.temperature)
            else:
                contrastive = inter_class_contrastive_loss(z1, z2, balanced["label"][0::2], cfg.temperature)
            log["inter_class"] = contrastive.detach()
            loss = loss + cfg.supervised_weight * contrastive
        if "unlabeled" in self.streams:
            view1, view2 = batch["unlabeled"]["views"][:2]
            if cfg.loss == "pseudo-label":
                with torch.no_grad():
                    confidence, guess = self(view1).softmax(1).max(1)
                keep = confidence >= cfg.pseudo_label_threshold
                pseudo = F.cross_entropy(self(view2)[keep], guess[keep]) if keep.any() else loss.new_zeros(())
                log["pseudo"] = pseudo.detach()
                loss = loss + cfg.unsupervised_weight * pseudo
            else:
                similarity = similarity_loss(self.model.embed_unsupervised(view1), self.model.embed_unsupervised(view2))
                log["similarity"] = similarity.detach()
                loss = loss + cfg.unsupervised_weight * similarity
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(images))
        for name, value in log.items():
            self.log(f"train/{name}", value, on_epoch=True, batch_size=len(images))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["label"])
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(logits), sync_dist=True)
        self.val_confusion.update(pred=logits.argmax(1), target=batch["label"])

    def on_validation_epoch_end(self) -> None:
        metrics = classification_metrics(self.val_confusion.compute(), list(self.hparams["class_names"]))
        self.log("val/acc", metrics["top1"], prog_bar=True)
        self.val_confusion.reset()
