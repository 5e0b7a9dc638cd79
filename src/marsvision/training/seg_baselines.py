"""Method B-seg Table 8 baselines on the supervised DeepLabv3+ trainer: CutOut, CutMix, ClassMix, Mean Teacher, ReCo.

``task=segmentation`` with ``segbaseline.method`` other than ``none`` trains the network of the supervised
baseline with cross-entropy on the labeled stream plus a loss on the unlabeled stream, against a teacher that
is an exponential moving average (EMA) of the network (Mean Teacher, Tarvainen & Valpola 2017). Paper 002
names these baselines but not their settings; this is our reading of the semi-supervised segmentation
literature (French et al. 2020 for CutOut/CutMix consistency, Olsson et al. 2021 for ClassMix, Liu et al. 2022
for ReCo, whose baselines use the same pattern):

* ``cutout`` / ``cutmix`` / ``classmix``: the teacher labels the unlabeled images (argmax of its softmax); the
  images, pseudo labels and confidences are mixed together (:mod:`marsvision.training.seg_augment`): CutOut
  blanks a box (and drops its labels), CutMix pastes a box of a partner image, ClassMix pastes the pixels of
  half of an image's predicted classes. The network trains on the mixed images with a cross-entropy on the
  pixels whose teacher confidence reaches ``pseudo_label_threshold``, divided by all pixels (so the weight
  grows with the confident share, as in ClassMix).
* ``mean-teacher``: mean squared difference of the network's and the teacher's softmax on the unlabeled
  images; the network's decoder dropout is its noise, the teacher runs in eval mode.
* ``reco``: ClassMix as above plus the regional contrast of :mod:`marsvision.losses.regional_contrast` on the
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
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.elementwise_contrastive import downsample_labels
from marsvision.losses.regional_contrast import RegionalContrastLoss
from marsvision.training.config import RunConfig, SegBaselineConfig
from marsvision.training.seg_augment import classmix_mask, cutmix_box_mask, cutout_mask, mix
from marsvision.training.segmentation import SegmentationModule

METHODS = ("cutout", "cutmix", "classmix", "mean-teacher", "reco")
"""Values of ``segbaseline.method`` that this module trains (``none`` is the plain SegmentationModule)."""


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


def confident_cross_entropy(
    logits: Tensor, targets: Tensor, confidence: Tensor, threshold: float, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Σ_{i: y_i ≠ ignore, c_i ≥ threshold} CE(logits_i, y_i) / #{i: y_i ≠ ignore}.

    Args:
        logits: (N, K, H, W).
        targets: (N, H, W) pseudo labels, ``ignore_index`` where there is none.
        confidence: (N, H, W) teacher confidence of each pseudo label.
        threshold: confidence a pixel needs to count in the numerator.
        ignore_index: label value of pixels without a pseudo label.
    """
    ce = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="none")  # (N, H, W)
    counted = targets != ignore_index
    keep = counted & (confidence >= threshold)
    return (ce * keep).sum() / counted.sum().clamp(min=1)


def mix_unlabeled(
    images: Tensor, probabilities: Tensor, config: SegBaselineConfig, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Mixed images, pseudo labels and confidences of an unlabeled batch for ``config.method``.

    Args:
        images: (N, C, H, W) unlabeled images.
        probabilities: (N, K, H, W) the teacher's softmax on them.
        config: the method and its mask sizes.
        generator: generator of the masks.

    Returns:
        ``(images (N, C, H, W), pseudo labels (N, H, W), confidence (N, H, W))``; CutOut blanks its box to 0
        with ``IGNORE_INDEX`` labels; CutMix and ClassMix paste the masked pixels of image i onto image i − 1.
    """
    confidence, pseudo = probabilities.max(dim=1)  # (N, H, W) each
    n, _, height, width = images.shape
    if config.method == "cutout":
        keep = ~cutout_mask(n, height, width, config.cutout_ratio, generator)
        return mix(images, 0.0, keep), mix(pseudo, IGNORE_INDEX, keep), mix(confidence, 0.0, keep)
    if config.method == "cutmix":
        mask = cutmix_box_mask(n, height, width, config.cutmix_area, generator)
    elif config.method in ("classmix", "reco"):
        mask = classmix_mask(pseudo, generator)
    else:
        raise ValueError(f"segbaseline.method {config.method!r} does not mix images")

    def partner(x: Tensor) -> Tensor:
        return x.roll(1, dims=0)

    return (
        mix(images, partner(images), mask),
        mix(pseudo, partner(pseudo), mask),
        mix(confidence, partner(confidence), mask),
    )


class SegBaselineModule(SegmentationModule):
    """The supervised DeepLabv3+ (or atrous) segmenter + an EMA teacher and one Table 8 unlabeled loss."""

    def __init__(self, config: RunConfig, class_names: list[str]) -> None:
        cfg = config.segbaseline
        if cfg.method not in METHODS:
            raise ValueError(f"segbaseline.method {cfg.method!r} is not a baseline; choose {', '.join(METHODS)}")
        if not 0.0 <= cfg.ema_decay < 1.0:
            raise ValueError(f"segbaseline.ema_decay must be in [0, 1), got {cfg.ema_decay}")
        if cfg.rampup_epochs < 0 or cfg.unsupervised_weight < 0:
            raise ValueError("segbaseline.rampup_epochs and unsupervised_weight must be ≥ 0")
        # set before the parent builds the network: ReCo contrasts the H_s embedding
        self.with_embedding = cfg.method == "reco"
        super().__init__(config, class_names)
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)
        self.regional_contrast: RegionalContrastLoss | None = None
        if cfg.method == "reco":
            self.regional_contrast = RegionalContrastLoss(
                self.num_classes,
                temperature=cfg.reco_temperature,
                num_queries=cfg.reco_num_queries,
                num_negatives=cfg.reco_num_negatives,
            )

    @torch.no_grad()
    def teacher_probabilities(self, images: Tensor) -> Tensor:
        """(N, K, H, W) softmax of the EMA teacher, in eval mode (no dropout, BN running statistics)."""
        self.teacher.eval()
        logits: Tensor = self.teacher(images)["logits"]
        return logits.float().softmax(dim=1)

    def unsupervised_weight(self) -> float:
        """``unsupervised_weight`` times the ramp-up at the current step."""
        cfg = self.config.segbaseline
        if cfg.rampup_epochs <= 0:
            return cfg.unsupervised_weight
        steps_per_epoch = max(int(self.trainer.num_training_batches), 1)
        return cfg.unsupervised_weight * sigmoid_rampup(self.global_step, round(cfg.rampup_epochs * steps_per_epoch))

    def step_generator(self) -> torch.Generator:
        """Generator of this step's masks and samples: a function of (seed, step, rank), so resumes replay them."""
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.global_step * 1_009 + self.global_rank)

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The step's loss (``"loss"``) and its parts, from the labeled and unlabeled streams of ``batch``."""
        cfg = self.config.segbaseline
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        unlabeled = batch["unlabeled"]["image"]
        generator = self.step_generator()
        teacher = self.teacher_probabilities(unlabeled)  # (M, K, H, W)
        if cfg.method == "mean-teacher":
            student_input, targets, confidence = unlabeled, None, None
        else:
            student_input, targets, confidence = mix_unlabeled(unlabeled, teacher, cfg, generator)
        # one forward pass over both streams, so BatchNorm sees them together
        outputs = self.model(torch.cat([images, student_input]))
        logits, unlabeled_logits = outputs["logits"].split([len(images), len(student_input)])
        parts = {"ce": F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)}
        if targets is None or confidence is None:
            parts["consistency"] = F.mse_loss(unlabeled_logits.float().softmax(dim=1), teacher)
            unsupervised = parts["consistency"]
        else:
            parts["pseudo_ce"] = confident_cross_entropy(
                unlabeled_logits, targets, confidence, cfg.pseudo_label_threshold
            )
            parts["pseudo_fraction"] = (
                ((confidence >= cfg.pseudo_label_threshold) & (targets != IGNORE_INDEX)).float().mean()
            )
            unsupervised = parts["pseudo_ce"]
        parts["loss"] = parts["ce"] + self.unsupervised_weight() * unsupervised
        if self.regional_contrast is not None and targets is not None and confidence is not None:
            weak = torch.where(confidence >= cfg.reco_weak_threshold, targets, IGNORE_INDEX)
            contrast_labels = torch.cat([labels, weak])  # (N + M, H, W)
            parts["regional_contrast"] = self.regional_contrast(
                outputs["embedding"],
                contrast_labels,
                self.hard_pixels(outputs["logits"], contrast_labels, outputs["embedding"].shape[-2:]),
                generator,
            )
            parts["loss"] = parts["loss"] + cfg.reco_weight * parts["regional_contrast"]
        return parts

    def hard_pixels(self, logits: Tensor, labels: Tensor, size: tuple[int, ...]) -> Tensor:
        """(N, h, w) True where the network's probability of the label is below ``pseudo_label_threshold``."""
        probability = logits.detach().float().softmax(dim=1)
        of_label = probability.gather(1, labels.clamp(0, self.num_classes - 1).unsqueeze(1)).squeeze(1)  # (N, H, W)
        return (
            downsample_labels(of_label, (int(size[0]), int(size[1]))) < self.config.segbaseline.pseudo_label_threshold
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        parts = self.compute_losses(batch)
        batch_size = len(batch["labeled"]["image"])
        self.log("train/loss", parts["loss"], on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        for name, value in parts.items():
            if name != "loss":
                self.log(f"train/{name}", value.detach(), on_step=False, on_epoch=True, batch_size=batch_size)
        return parts["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the teacher towards the network after the optimiser step."""
        ema_update(self.teacher, self.model, ema_decay_at(self.global_step - 1, self.config.segbaseline.ema_decay))
