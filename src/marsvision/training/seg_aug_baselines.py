"""Table 8 baselines of paper 002 trained on the labeled images alone: augmentation, ReCo, and the two together.

Paper 002 (§7.2) discusses CutOut, CutMix and ClassMix as *data augmentation* methods. Here they act on the
labeled batch, images and ground truth together (:mod:`marsvision.training.seg_augment`), and the network
trains with the pixel cross-entropy on the mixed batch; the pseudo-label versions on unlabeled images, against
an EMA teacher, are ``seg-*-teacher`` (:mod:`marsvision.training.seg_baselines`).

* ``seg-cutout-aug``: a box of ``cutout_ratio`` of each side blanked to 0, its pixels' labels ignored
  (DeVries & Taylor 2017; the labels of the blanked box are dropped as in ReCo's code);
* ``seg-cutmix-aug``: a box covering ``cutmix_area`` of the image pasted from the previous image of the
  batch with its labels (Yun et al. 2019);
* ``seg-classmix-aug``: the pixels of half of the ground-truth classes of an image pasted onto the previous
  image with their labels (Olsson et al. 2021);
* ``seg-reco-supervised`` ("ReCo" of Table 8): L_ce + w · ReCo's regional contrast (Liu et al. 2022,
  :mod:`marsvision.losses.regional_contrast`) on the H_s embedding of the labeled pixels with their ground
  truth, queries drawn among pixels whose predicted probability of their label is below
  ``pseudo_label_threshold`` (ReCo's strong threshold; its supervised mode, ``train_sup.py --apply_reco``);
* ``seg-reco-cutout-aug``, ``seg-reco-cutmix-aug``: the same on the CutOut- and CutMix-mixed batch.

Draws (boxes, classes) are a function of (seed, step, rank), so a resumed run replays them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from marsvision.data.classes import IGNORE_INDEX
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo
from marsvision.training.reproducibility import step_generator
from marsvision.training.seg_baselines import (
    MixedBatch,
    build_regional_contrast,
    hard_pixels,
    mix_classmix,
    mix_cutmix,
    mix_cutout,
)
from marsvision.training.segmentation import SegmentationModule

Augmentation = Literal["none", "cutout", "cutmix", "classmix"]


class AugmentedSegmentation(SegmentationModule):
    """Pixel cross-entropy on the labeled batch after its :attr:`augmentation` (images and labels together)."""

    augmentation: ClassVar[Augmentation] = "none"

    def augment(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The batch (N, C, H, W) and its labels (N, H, W) after :attr:`augmentation`."""
        cfg = self.config.segbaseline
        certain = torch.ones(labels.shape, device=labels.device)  # ground truth: every label counts
        mixed: MixedBatch
        if self.augmentation == "none":
            return images, labels
        if self.augmentation == "cutout":
            mixed = mix_cutout(images, labels, certain, cfg.cutout_ratio, generator)
        elif self.augmentation == "cutmix":
            mixed = mix_cutmix(images, labels, certain, cfg.cutmix_area, generator)
        else:
            mixed = mix_classmix(images, labels, certain, generator)
        return mixed.images, mixed.pseudo

    def extra_parts(self, outputs: dict[str, Tensor], labels: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Unweighted loss parts beyond the cross-entropy, each named in :attr:`loss_weights`."""
        return {}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        generator = step_generator(self.config.seed, self.global_step, self.global_rank)
        images, labels = self.augment(batch["labeled"]["image"], batch["labeled"]["label"], generator)
        outputs = self.model(images)
        parts = {"ce": F.cross_entropy(outputs["logits"], labels, ignore_index=IGNORE_INDEX)}
        parts.update(self.extra_parts(outputs, labels, generator))
        parts["loss"] = self.weighted_total(parts)
        return self.log_loss_parts(parts, batch_size=len(images))


class CutOutAugmentation(AugmentedSegmentation):
    """CutOut on the labeled images (``seg-cutout-aug``)."""

    augmentation: ClassVar[Augmentation] = "cutout"


class CutMixAugmentation(AugmentedSegmentation):
    """CutMix on the labeled images (``seg-cutmix-aug``)."""

    augmentation: ClassVar[Augmentation] = "cutmix"


class ClassMixAugmentation(AugmentedSegmentation):
    """ClassMix on the labeled images, by their ground-truth classes (``seg-classmix-aug``)."""

    augmentation: ClassVar[Augmentation] = "classmix"


class ReCoSupervised(AugmentedSegmentation):
    """L_ce + w · ReCo's regional contrast on the labeled pixels (``seg-reco-supervised``)."""

    with_embedding: ClassVar[bool] = True
    loss_weights: ClassVar[dict[str, str]] = {"regional_contrast": "segbaseline.reco_weight"}

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.regional_contrast = build_regional_contrast(self.num_classes, config.segbaseline)

    def extra_parts(self, outputs: dict[str, Tensor], labels: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        embedding = outputs["embedding"]  # (N, D, H/4, W/4)
        size = (int(embedding.shape[-2]), int(embedding.shape[-1]))
        hard = hard_pixels(outputs["logits"], labels, size, self.config.segbaseline.pseudo_label_threshold)
        return {"regional_contrast": self.regional_contrast(embedding, labels, hard, generator)}


class ReCoCutOutAugmentation(ReCoSupervised):
    """ReCo on CutOut-augmented labeled images (``seg-reco-cutout-aug``)."""

    augmentation: ClassVar[Augmentation] = "cutout"


class ReCoCutMixAugmentation(ReCoSupervised):
    """ReCo on CutMix-augmented labeled images (``seg-reco-cutmix-aug``)."""

    augmentation: ClassVar[Augmentation] = "cutmix"
