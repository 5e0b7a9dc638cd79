"""Method B classification (paper 002 §4) and the Table 3 baselines, one class per method on one network.

Every method trains the same network (backbone B + linear H_cls, with MLP heads H_s and H_u used only by the
contrastive losses) with a cross-entropy on the labeled stream; the methods differ in that supervised loss and
in what the other streams add:

* ``cls-ce``, ``cls-focal``, ``cls-class-balanced``: the supervised loss alone;
* ``cls-mixup``, ``cls-cutmix``: the cross-entropy on mixed images against mixed labels (torchvision v2);
* ``cls-supcon``: + SupCon on class-balanced pairs; ``cls-pseudo-label``: + confident pseudo labels on
  unlabeled images; ``cls-infonce``: + the unsupervised contrastive loss of paper 002's Eq. (1);
* ``wang-cls`` (paper 002, "ours"): + λ_s L_s (inter-class contrast on class-balanced pairs of different
  images) + λ_u L_u (similarity of two views of an unlabeled image).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from lightly.utils.debug import std_of_l2_normalized
from torch import Tensor, nn
from torchvision.transforms import v2

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
from marsvision.training.batchnorm import running_statistics_frozen
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream, Task
from marsvision.training.factory import resolve_weights
from marsvision.training.lightning_base import MarsvisionModule


class CrossEntropyClassification(MarsvisionModule):
    """The Table 3 baseline: cross-entropy on the labeled stream (``method: cls-ce``).

    Subclasses change :meth:`supervised_loss` or add parts in :meth:`extra_parts`.
    """

    task: ClassVar[Task] = "classification"
    find_unused_parameters = True  # H_s and H_u sit idle under the losses that do not use them

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        encoder = create_encoder(config.model.encoder, in_channels=config.data.channels)
        if config.model.initial_weights:
            weights = resolve_weights(config.model.initial_weights, config.runs_root)
            load_encoder_weights(encoder, weights, kind=cast(WeightsKind, config.model.weights_kind))
        self.model = SemiSupervisedClassifier(
            encoder,
            self.num_classes,
            projection_dim=config.model.projection_dim,
            dropout=config.model.classifier_dropout,
        )
        self.val_confusion = ConfusionMatrix(self.num_classes)

    def backbone_modules(self) -> list[nn.Module]:
        # Paper 002 trains B, H_s and H_u at 1e-6 and only H_cls at 1e-3 (backbone_lr vs lr).
        return [self.model.encoder, self.model.supervised_head, self.model.unsupervised_head]

    def forward(self, images: Tensor) -> Tensor:
        logits: Tensor = self.model(images)["logits"]
        return logits

    def supervised_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        """L_ce of the labeled batch: images (N, C, H, W), class indices (N,)."""
        return F.cross_entropy(self(images), targets)

    def labeled_parts(self, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Loss parts of the labeled batch: ``ce``, the supervised loss, and any part that shares its forward pass."""
        return {"ce": self.supervised_loss(images, targets)}

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Unweighted loss parts from the other streams (named in :attr:`loss_weights`) and statistics to log.

        A name outside :attr:`loss_weights` is logged beside the loss parts and does not enter the loss.
        """
        return {}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images, targets = batch["labeled"]["image"], batch["labeled"]["label"]
        parts = self.labeled_parts(images, targets)
        extra = {name: value for name, value in parts.items() if name != "ce"}
        # Strong views, tiles and unlabeled images are normalised with their own batch statistics, but the
        # running averages evaluation uses stay the labeled images': folding the other streams' statistics in
        # cost wang-cls 8 points of eval-mode accuracy on held-out train images (docs/results).
        with running_statistics_frozen(self.model.encoder):
            extra.update(self.extra_parts(batch))
        total = parts["ce"]
        for name, value in extra.items():
            if name in self.loss_weights:
                total = total + self.weight(name) * value
        parts.update(extra, loss=total)
        return self.log_loss_parts(parts, batch_size=len(images))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["label"])
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(logits), sync_dist=True)
        self.val_confusion.update(pred=logits.argmax(1), target=batch["label"])

    def on_validation_epoch_end(self) -> None:
        metrics = classification_metrics(self.val_confusion.compute(), list(self.hparams["class_names"]))
        self.log("val/acc", metrics["top1"], prog_bar=True)
        self.val_confusion.reset()


class FocalClassification(CrossEntropyClassification):
    """Focal loss (Lin et al. 2017) instead of the cross-entropy, γ = ``classification.focal_gamma``."""

    def supervised_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        return focal_loss(self(images), targets, gamma=self.config.classification.focal_gamma)


class ClassBalancedClassification(CrossEntropyClassification):
    """Class-balanced cross-entropy (Cui et al. 2019): classes weighted by the inverse effective number."""

    def supervised_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        counts = torch.tensor(self.classes.samples_per_class, dtype=torch.float)
        return class_balanced_loss(self(images), targets, counts, beta=self.config.classification.class_balanced_beta)


class MixUpClassification(CrossEntropyClassification):
    """MixUp (Zhang et al. 2018): the cross-entropy of mixed images against the same mix of their one-hot labels."""

    def mixer(self) -> v2.Transform:
        """The batch mixing transform; λ ~ Beta(α, α) with α = ``classification.mix_alpha``."""
        return v2.MixUp(alpha=self.config.classification.mix_alpha, num_classes=self.num_classes)

    def supervised_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        mixed, soft_targets = self.mixer()(images, targets)  # (N, C, H, W), (N, K)
        return F.cross_entropy(self(mixed), soft_targets)


class CutMixClassification(MixUpClassification):
    """CutMix (Yun et al. 2019): a box of a partner image is pasted in; labels mix by the box's area."""

    def mixer(self) -> v2.Transform:
        return v2.CutMix(alpha=self.config.classification.mix_alpha, num_classes=self.num_classes)


def _balanced_pairs(batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """The two different images of every class in a class-balanced batch, and the classes: (C, …) each."""
    balanced = batch["balanced"]
    return balanced["image"][0::2], balanced["image"][1::2], balanced["label"][0::2]


class SupConClassification(CrossEntropyClassification):
    """+ Supervised contrastive loss (Khosla et al. 2020) on the class-balanced pairs (Table 3's SupCon)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "balanced")
    loss_weights: ClassVar[dict[str, str]] = {"inter_class": "classification.supervised_weight"}

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        first, second, classes = _balanced_pairs(batch)
        z1 = F.normalize(self.model.embed_supervised(first), dim=1)  # (C, D)
        z2 = F.normalize(self.model.embed_supervised(second), dim=1)
        features = torch.stack([z1, z2], dim=1)  # (C, 2, D)
        return {"inter_class": supcon_loss(features, classes, temperature=self.config.classification.temperature)}


class InfoNCEClassification(CrossEntropyClassification):
    """+ the original contrastive loss, paper 002's Eq. (1), in place of L_s (Table 4, "+Eq.(1)").

    L = L_ce + λ_s · L_nce with L_nce = −mean_i log( exp(K(z¹_i, z²_i)/τ) / Σ_j exp(K(z¹_i, z²_j)/τ) ): two
    strong views of each image of the ``unlabeled-views`` stream (the training images without their labels when
    every pool image is labeled, as in paper 002's MSL set-up), every other image of the batch a negative, same
    class or not; H_s and τ as L_s. Eq. (2) is this loss with positives and negatives chosen by class.
    """

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled-views")
    loss_weights: ClassVar[dict[str, str]] = {"infonce": "classification.supervised_weight"}

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        view1, view2 = batch["unlabeled-views"]["views"][:2]
        z1, z2 = self.model.embed_supervised(view1), self.model.embed_supervised(view2)  # (M, D) each
        own_class = torch.arange(len(z1), device=z1.device)  # every image its own class: Eq. (1)
        return {"infonce": inter_class_contrastive_loss(z1, z2, own_class, self.config.classification.temperature)}


class PseudoLabelClassification(CrossEntropyClassification):
    """+ Pseudo-labeling (Lee 2013): confident guesses on one view of an unlabeled image train the other view.

    A guess counts when its confidence reaches ``classification.pseudo_label_threshold``.
    """

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled-views")
    loss_weights: ClassVar[dict[str, str]] = {"pseudo": "classification.unsupervised_weight"}

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        view1, view2 = batch["unlabeled-views"]["views"][:2]
        with torch.no_grad():
            confidence, guess = self(view1).softmax(1).max(1)
        keep = confidence >= self.config.classification.pseudo_label_threshold
        logits = self(view2)
        per_image = F.cross_entropy(logits, guess, reduction="none")  # (M,)
        return {"pseudo": (per_image * keep).sum() / keep.sum().clamp(min=1)}


class WangClassification(CrossEntropyClassification):
    """Paper 002's method ("ours"): L = L_ce + λ_s L_s + λ_u L_u (§4, Eq. 4).

    L_s: inter-class contrast between two different images of every class (class-balanced stream, H_s);
    L_u: negative cosine similarity of two strong views of each unlabeled image (H_u).

    L_u has positives only, so a constant embedding minimises it (L_u = −1). Logged with it, SimSiam's measure of
    collapse (lightly's ``std_of_l2_normalized``: 0 for a constant, about 1/√d for spread d-dim vectors) of the
    first view's embedding H_u(B(x)) and of its backbone features B(x) tell whether the head alone collapsed or
    the backbone with it.
    """

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "balanced", "unlabeled-views")
    loss_weights: ClassVar[dict[str, str]] = {
        "inter_class": "classification.supervised_weight",
        "similarity": "classification.unsupervised_weight",
    }

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        first, second, classes = _balanced_pairs(batch)
        z1 = self.model.embed_supervised(first)  # (C, D)
        z2 = self.model.embed_supervised(second)
        view1, view2 = batch["unlabeled-views"]["views"][:2]
        features = self.model.encoder(view1)  # (M, F)
        u1 = self.model.unsupervised_head(features)  # (M, P)
        return {
            "inter_class": inter_class_contrastive_loss(z1, z2, classes, self.config.classification.temperature),
            "similarity": similarity_loss(u1, self.model.embed_unsupervised(view2)),
            "similarity_embedding_std": std_of_l2_normalized(u1.detach().float()),
            "unlabeled_feature_std": std_of_l2_normalized(features.detach().float()),
        }
