"""Method B segmentation: DeepLabv3+ with a memory-bank contrastive loss and online pseudo labels (paper 002 §5).

Three stages in one run (SPEC "Method B-seg"): stage 1 trains B + H_s with L_s alone on ground-truth labels;
stage 2 adds the cross-entropy (L_ce + λ L_s); stage 3 also fills the contrastive labels with the current
model's confident predictions on unlabeled locations. A stage with 0 epochs is skipped (the Table 9 ablations).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.elementwise_contrastive import ElementwiseContrastiveLoss
from marsvision.training.config import ConfigError, DataConfig, RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.schedules import stage_at
from marsvision.training.segmentation import SegmentationModule

STAGES = ("contrastive", "joint", "pseudo")


def stage_of_epoch(epoch: int, stage_epochs: list[int]) -> str:
    """Name of the stage an epoch belongs to: epochs run through the stages in order, skipping empty ones."""
    return stage_at(epoch, stage_epochs, STAGES)


def labels_whole_pool(data: DataConfig) -> bool:
    """Whether the labeled set is the whole training pool (paper 002's set-up: every training image is labeled).

    The pool then has no unlabeled remainder, and the split policy fills the unlabeled stream with the labeled
    images again, labels dropped (training/data.py): stage 3 must not pseudo-label those, or pixels that have
    ground truth would be relabeled. Pseudo labels then come from the labeled stream's unlabeled pixels alone,
    as in the paper (§5.2: "we supplement the unlabeled part in y with the high-confidence part in ŷ").
    """
    return data.label_count is None and data.label_fraction >= 1.0


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` in eval mode (BatchNorm running statistics, no dropout) and restore every submodule's mode."""
    modes = [(child, child.training) for child in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for child, training in modes:
            child.training = training


def pseudo_labels(
    logits: torch.Tensor, labels: torch.Tensor, threshold: float, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Contrastive labels: ground truth where labeled, else the confident prediction (≥ threshold), else 255.

    Only locations labeled 255 that belong to the image (``valid``, (N, H, W) bool: not the augmentation's
    padding) can receive a pseudo label: ground truth is never replaced. Also returns the per-step statistics
    the paper's threshold study needs: the share of unlabeled image locations that received a pseudo label, and
    the accuracy the same rule would have on the labeled locations if their labels were hidden.
    """
    confidence, predicted = logits.detach().float().softmax(dim=1).max(dim=1)  # (N, H, W) each, float32 under bf16
    confident = confidence >= threshold
    unlabeled = labels == IGNORE_INDEX
    if valid is not None:
        unlabeled = unlabeled & valid
    filled = torch.where(unlabeled & confident, predicted, labels)
    labeled_confident = ~unlabeled & confident
    stats = {
        "pseudo_fraction": (unlabeled & confident).float().sum() / unlabeled.float().sum().clamp(min=1),
        "pseudo_accuracy": (predicted == labels)[labeled_confident].float().mean()
        if labeled_confident.any()
        else torch.tensor(float("nan")),
    }
    return filled, stats


class SemiSegModule(SegmentationModule):
    """DeepLabv3+ (shared encoder, H_seg and H_s decoders) + class memory bank, trained in three stages."""

    with_embedding: ClassVar[bool] = True
    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    loss_weights: ClassVar[dict[str, str]] = {"contrastive": "semiseg.contrastive_weight"}
    """λ weighs L_s in stages 2 and 3; stage 1 trains on L_s alone."""
    find_unused_parameters = True  # stage 1 trains B + H_s only; H_seg waits for stage 2

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        data = config.data
        if labels_whole_pool(data) and (data.unlabeled_root or data.unlabeled_test_images):
            raise ConfigError(
                "wang-seg: with every pool image labeled (data.label_fraction=1) the unlabeled stream repeats the "
                "labeled images, which stage 3 must leave alone, so data.unlabeled_root / "
                "data.unlabeled_test_images would go unused; set data.label_fraction below 1 to use them"
            )
        super().__init__(config, classes)
        semi = config.semiseg
        # Loss against the class memory bank's prototypes, then push this batch's class means (eq. 7); the bank
        # is a buffer of this module, so checkpoints carry it and --resume restores it.
        self.contrastive = ElementwiseContrastiveLoss(
            self.num_classes, semi.embedding_dim, semi.queue_len, semi.temperature
        )
        self.pseudo_labels_unlabeled_stream = not labels_whole_pool(data)
        """Whether stage 3 pseudo-labels the unlabeled stream: only when it holds images outside the labeled set."""

    def total_epochs(self) -> int | None:
        return sum(self.config.semiseg.stage_epochs)

    def stage_of_epoch(self, epoch: int) -> str:
        return stage_of_epoch(epoch, self.config.semiseg.stage_epochs)

    @torch.no_grad()
    def labeling_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (N, K, H, W) the pseudo labels come from: the current model in eval mode.

        BatchNorm uses its running statistics and the ASPP dropout is off, so a location's pseudo label does not
        depend on the rest of the batch or on a dropout draw (the trained model's prediction, §5.2).
        """
        with evaluation_mode(self.model):
            logits: torch.Tensor = self.model(images, with_embedding=False)["logits"]
        return logits

    def compute_losses(self, batch: dict[str, Any], stage: str) -> dict[str, torch.Tensor]:
        """The stage's loss (``"loss"``) and its parts; pushes this batch's class means into the bank."""
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        outputs = self.model(images)  # logits (N, K, H, W), embedding (N, D, H/4, W/4)
        threshold = self.config.semiseg.pseudo_label_threshold
        contrastive_labels = labels
        embeddings = outputs["embedding"]
        parts: dict[str, torch.Tensor] = {}
        if stage == "pseudo":  # the augmentation's padding ("valid" is False there) gets no pseudo label
            labeled = batch["labeled"]
            contrastive_labels, stats = pseudo_labels(
                self.labeling_logits(images), labels, threshold, labeled.get("valid")
            )
            parts.update(stats)
            unlabeled = batch.get("unlabeled")
            if unlabeled is not None and self.pseudo_labels_unlabeled_stream:
                extra = self.model(unlabeled["image"])
                hidden = torch.full_like(extra["logits"][:, 0], IGNORE_INDEX, dtype=torch.long)
                extra_labels, _ = pseudo_labels(
                    self.labeling_logits(unlabeled["image"]), hidden, threshold, unlabeled.get("valid")
                )
                embeddings = torch.cat([embeddings, extra["embedding"]])
                contrastive_labels = torch.cat([contrastive_labels, extra_labels])
        contrastive = self.contrastive(embeddings, contrastive_labels)
        parts["contrastive"] = contrastive
        if stage == "contrastive":
            parts["loss"] = contrastive
            return parts
        # The cross-entropy sees ground truth only: pseudo labels feed the contrastive loss and the bank alone.
        parts["ce"] = F.cross_entropy(outputs["logits"], labels, ignore_index=IGNORE_INDEX)
        parts["loss"] = parts["ce"] + self.weight("contrastive") * contrastive
        return parts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        parts = self.compute_losses(batch, self.stage_of_epoch(self.current_epoch))
        return self.log_loss_parts(parts, batch_size=len(batch["labeled"]["image"]))
