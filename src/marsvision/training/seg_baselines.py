"""Method B-seg Table 8 baselines with an EMA teacher: CutOut, CutMix, ClassMix, Mean Teacher, ReCo.

Each trains the network of the supervised baseline with cross-entropy on the labeled stream plus a loss on the
unlabeled stream, against a teacher that is an exponential moving average (EMA) of the network (Mean Teacher,
Tarvainen & Valpola 2017). Paper 002 names these baselines but not their settings; this is our reading of the
semi-supervised segmentation literature (French et al. 2020 for CutOut/CutMix consistency, Olsson et al. 2021
for ClassMix, Liu et al. 2022 for ReCo, whose baselines use the same pattern):

* ``seg-cutout-teacher`` / ``seg-cutmix-teacher`` / ``seg-classmix-teacher``: the teacher labels the unlabeled
  images (argmax of its softmax); the images, pseudo labels and confidences are mixed together
  (:mod:`marsvision.training.seg_augment`): CutOut blanks a box (and drops its labels), CutMix pastes a box of a
  partner image, ClassMix pastes the pixels of half of an image's predicted classes. The network trains on the
  mixed images with a cross-entropy on the pixels whose teacher confidence reaches ``pseudo_label_threshold``,
  divided by all pixels (so the weight grows with the confident share, as in ClassMix).
* ``seg-mean-teacher``: mean squared difference of the network's and the teacher's softmax on the unlabeled
  images; the network's decoder dropout is its noise, the teacher runs in eval mode.
* ``seg-reco``: ClassMix as above plus the regional contrast of :mod:`marsvision.losses.regional_contrast` on the
  H_s embedding, over labeled pixels (ground truth) and mixed unlabeled pixels whose teacher confidence reaches
  ``reco_weak_threshold``; queries are drawn among pixels where the network's probability of the label is below
  ``pseudo_label_threshold`` (the hard ones). Liu et al. also pair ReCo with ClassMix.

The unlabeled loss weight follows a sigmoid ramp-up over ``rampup_epochs``. The teacher is a submodule (saved
in every checkpoint) with ``requires_grad=False``, so the optimiser never sees it; it is updated after each
optimiser step. Evaluation and prediction use the network itself, as for every other method.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.labels import downsample_labels
from marsvision.losses.confident_cross_entropy import confident_cross_entropy
from marsvision.losses.regional_contrast import RegionalContrastLoss
from marsvision.training.config import RunConfig, SegBaselineConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.reproducibility import step_generator
from marsvision.training.seg_augment import classmix_mask, cutmix_box_mask, cutout_mask, mix
from marsvision.training.segmentation import SegmentationModule


def sigmoid_rampup(step: int, rampup_steps: int) -> float:
    """Mean Teacher's ramp-up exp(−5 (1 − t)²), t = step / rampup_steps clipped to [0, 1]; 1 without ramp-up."""
    if rampup_steps <= 0:
        return 1.0
    t = min(max(step, 0), rampup_steps) / rampup_steps
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


def ema_decay_at(step: int, decay: float) -> float:
    """α = min(1 − 1/(step + 1), decay): the teacher follows the network closely while it is young."""
    return min(1.0 - 1.0 / (max(step, 0) + 1), decay)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """θ'_teacher ← decay · θ'_teacher + (1 − decay) · θ_student for every parameter; buffers (BN statistics) copied."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for tb, sb in zip(teacher.buffers(), student.buffers(), strict=True):
        tb.copy_(sb)


class MixedBatch(NamedTuple):
    """An unlabeled batch after mixing: images (N, C, H, W), pseudo labels and teacher confidences (N, H, W)."""

    images: Tensor
    pseudo: Tensor
    confidence: Tensor


def _paste_partner(images: Tensor, pseudo: Tensor, confidence: Tensor, mask: Tensor) -> MixedBatch:
    """Paste the masked pixels of image i onto image i − 1 (the batch rolled by one is the partner)."""

    def partner(x: Tensor) -> Tensor:
        return x.roll(1, dims=0)

    return MixedBatch(
        mix(images, partner(images), mask),
        mix(pseudo, partner(pseudo), mask),
        mix(confidence, partner(confidence), mask),
    )


def mix_cutout(
    images: Tensor, pseudo: Tensor, confidence: Tensor, ratio: float, generator: torch.Generator
) -> MixedBatch:
    """CutOut: a box of side ``ratio`` × the image side is blanked to 0 in each image, its pseudo labels dropped."""
    n, _, height, width = images.shape
    keep = ~cutout_mask(n, height, width, ratio, generator)
    return MixedBatch(mix(images, 0.0, keep), mix(pseudo, IGNORE_INDEX, keep), mix(confidence, 0.0, keep))


def mix_cutmix(
    images: Tensor, pseudo: Tensor, confidence: Tensor, area: float, generator: torch.Generator
) -> MixedBatch:
    """CutMix: a box covering ``area`` of a partner image (and its pseudo labels) is pasted onto each image."""
    n, _, height, width = images.shape
    return _paste_partner(images, pseudo, confidence, cutmix_box_mask(n, height, width, area, generator))


def mix_classmix(images: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator) -> MixedBatch:
    """ClassMix: the pixels of half of each image's predicted classes are pasted onto its partner."""
    return _paste_partner(images, pseudo, confidence, classmix_mask(pseudo, generator))


def build_regional_contrast(num_classes: int, cfg: SegBaselineConfig) -> RegionalContrastLoss:
    """ReCo's regional contrast with the ``segbaseline.reco_*`` settings."""
    return RegionalContrastLoss(
        num_classes,
        temperature=cfg.reco_temperature,
        num_queries=cfg.reco_num_queries,
        num_negatives=cfg.reco_num_negatives,
    )


def hard_pixels(logits: Tensor, labels: Tensor, size: tuple[int, int], threshold: float) -> Tensor:
    """(N, h, w) True where the network's probability of the label, downsampled to ``size``, is below ``threshold``.

    ReCo draws its queries among these pixels; ``logits`` (N, K, H, W) and ``labels`` (N, H, W).
    """
    probability = logits.detach().float().softmax(dim=1)
    of_label = probability.gather(1, labels.clamp(0, logits.shape[1] - 1).unsqueeze(1)).squeeze(1)  # (N, H, W)
    return downsample_labels(of_label, size) < threshold


class TeacherSegmentation(SegmentationModule):
    """The supervised segmenter + an EMA teacher whose pseudo labels on mixed unlabeled images train it.

    Subclasses say how an unlabeled batch is mixed (:meth:`mix`); Mean Teacher replaces the pseudo-label loss.
    """

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    loss_weights: ClassVar[dict[str, str]] = {"pseudo_ce": "segbaseline.unsupervised_weight"}

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        cfg = config.segbaseline
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"segbaseline.ema_decay must be in [0, 1), got {cfg.ema_decay}")
        if cfg.rampup_epochs < 0 or cfg.unsupervised_weight < 0:
            raise ValueError("segbaseline.rampup_epochs and unsupervised_weight must be ≥ 0")
        super().__init__(config, classes)
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)

    def mix(self, images: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator) -> MixedBatch:
        """Mix an unlabeled batch: images (N, C, H, W), teacher labels and confidences (N, H, W) each."""
        raise NotImplementedError

    @torch.no_grad()
    def teacher_probabilities(self, images: Tensor) -> Tensor:
        """(N, K, H, W) softmax of the EMA teacher, in eval mode (no dropout, BN running statistics)."""
        self.teacher.eval()
        logits: Tensor = self.teacher(images)["logits"]
        return logits.float().softmax(dim=1)

    def unsupervised_ramp(self) -> float:
        """The sigmoid ramp-up of the unlabeled loss weight at the current step (1 without ramp-up)."""
        cfg = self.config.segbaseline
        if cfg.rampup_epochs <= 0:
            return 1.0
        steps_per_epoch = max(int(self.trainer.num_training_batches), 1)
        return sigmoid_rampup(self.global_step, round(cfg.rampup_epochs * steps_per_epoch))

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The step's loss (``"loss"``) and its parts, from the labeled and unlabeled streams of ``batch``."""
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        unlabeled = batch["unlabeled"]["image"]
        generator = step_generator(self.config.seed, self.global_step, self.global_rank)
        teacher = self.teacher_probabilities(unlabeled)  # (M, K, H, W)
        confidence, pseudo = teacher.max(dim=1)  # (M, H, W) each
        mixed = self.mix(unlabeled, pseudo, confidence, generator)
        # one forward pass over both streams, so BatchNorm sees them together
        outputs = self.model(torch.cat([images, mixed.images]))
        logits, unlabeled_logits = outputs["logits"].split([len(images), len(mixed.images)])
        parts = {"ce": F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)}
        unlabeled_parts = self.unlabeled_parts(unlabeled_logits, teacher, mixed)
        parts.update(unlabeled_parts)
        unsupervised = [
            self.weight(name) * value for name, value in unlabeled_parts.items() if name in self.loss_weights
        ]
        parts["loss"] = parts["ce"] + self.unsupervised_ramp() * torch.stack(unsupervised).sum()
        self.add_parts(parts, outputs, labels, mixed, generator)
        return parts

    def unlabeled_parts(self, logits: Tensor, teacher: Tensor, mixed: MixedBatch) -> dict[str, Tensor]:
        """The unlabeled loss on the network's logits (M, K, H, W) of the mixed batch: confident pseudo-label CE."""
        threshold = self.config.segbaseline.pseudo_label_threshold
        return {
            "pseudo_ce": confident_cross_entropy(logits, mixed.pseudo, mixed.confidence, threshold),
            "pseudo_fraction": ((mixed.confidence >= threshold) & (mixed.pseudo != IGNORE_INDEX)).float().mean(),
        }

    def add_parts(
        self, parts: dict[str, Tensor], outputs: dict[str, Tensor], labels: Tensor, mixed: MixedBatch, generator: Any
    ) -> None:
        """Hook for losses beyond the unlabeled one (ReCo's regional contrast), added to ``parts`` in place."""

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        parts = self.compute_losses(batch)
        return self.log_loss_parts(parts, batch_size=len(batch["labeled"]["image"]))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the teacher towards the network after the optimiser step."""
        ema_update(self.teacher, self.model, ema_decay_at(self.global_step - 1, self.config.segbaseline.ema_decay))


class CutOutTeacher(TeacherSegmentation):
    """CutOut consistency against the teacher's pseudo labels (:func:`mix_cutout`)."""

    def mix(self, images: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator) -> MixedBatch:
        return mix_cutout(images, pseudo, confidence, self.config.segbaseline.cutout_ratio, generator)


class CutMixTeacher(TeacherSegmentation):
    """CutMix consistency against the teacher's pseudo labels (:func:`mix_cutmix`)."""

    def mix(self, images: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator) -> MixedBatch:
        return mix_cutmix(images, pseudo, confidence, self.config.segbaseline.cutmix_area, generator)


class ClassMixTeacher(TeacherSegmentation):
    """ClassMix against the teacher's pseudo labels (:func:`mix_classmix`)."""

    def mix(self, images: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator) -> MixedBatch:
        return mix_classmix(images, pseudo, confidence, generator)


class MeanTeacher(TeacherSegmentation):
    """Mean Teacher: the network's softmax on the unlabeled images follows the teacher's (mean squared error)."""

    loss_weights: ClassVar[dict[str, str]] = {"consistency": "segbaseline.unsupervised_weight"}

    def mix(self, images: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator) -> MixedBatch:
        return MixedBatch(images, pseudo, confidence)  # no mixing: the decoder dropout is the noise

    def unlabeled_parts(self, logits: Tensor, teacher: Tensor, mixed: MixedBatch) -> dict[str, Tensor]:
        return {"consistency": F.mse_loss(logits.float().softmax(dim=1), teacher)}


class ReCo(ClassMixTeacher):
    """ClassMix + ReCo's regional contrast on the H_s embedding (Liu et al. 2022)."""

    with_embedding: ClassVar[bool] = True
    loss_weights: ClassVar[dict[str, str]] = {
        **TeacherSegmentation.loss_weights,
        "regional_contrast": "segbaseline.reco_weight",
    }

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.regional_contrast = build_regional_contrast(self.num_classes, config.segbaseline)

    def add_parts(
        self, parts: dict[str, Tensor], outputs: dict[str, Tensor], labels: Tensor, mixed: MixedBatch, generator: Any
    ) -> None:
        cfg = self.config.segbaseline
        weak = torch.where(mixed.confidence >= cfg.reco_weak_threshold, mixed.pseudo, IGNORE_INDEX)
        contrast_labels = torch.cat([labels, weak])  # (N + M, H, W)
        parts["regional_contrast"] = self.regional_contrast(
            outputs["embedding"],
            contrast_labels,
            self.hard_pixels(outputs["logits"], contrast_labels, outputs["embedding"].shape[-2:]),
            generator,
        )
        parts["loss"] = parts["loss"] + self.weight("regional_contrast") * parts["regional_contrast"]

    def hard_pixels(self, logits: Tensor, labels: Tensor, size: tuple[int, ...]) -> Tensor:
        """(N, h, w) True where the network's probability of the label is below ``pseudo_label_threshold``."""
        return hard_pixels(logits, labels, (int(size[0]), int(size[1])), self.config.segbaseline.pseudo_label_threshold)
