"""Method B segmentation: DeepLabv3+ with a memory-bank contrastive loss and online pseudo labels (paper 002 §5).

Three stages in one run (SPEC "Method B-seg"): stage 1 trains B + H_s with L_s alone on ground-truth labels;
stage 2 adds the cross-entropy (L_ce + λ L_s); stage 3 also fills the contrastive labels with the current
model's confident predictions on unlabeled locations. A stage with 0 epochs is skipped (the Table 9 ablations).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.elementwise_contrastive import ElementwiseContrastiveLoss
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.schedules import stage_at
from marsvision.training.segmentation import SegmentationModule

STAGES = ("contrastive", "joint", "pseudo")


def stage_of_epoch(epoch: int, stage_epochs: list[int]) -> str:
    """Name of the stage an epoch belongs to: epochs run through the stages in order, skipping empty ones."""
    return stage_at(epoch, stage_epochs, STAGES)


def pseudo_labels(
    logits: torch.Tensor, labels: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Contrastive labels: ground truth where labeled, else the confident prediction (≥ threshold), else 255.

    Also returns the per-step statistics the paper's threshold study needs: the share of unlabeled locations
    that received a pseudo label, and the accuracy the same rule would have on the labeled locations if their
    labels were hidden.
    """
    confidence, predicted = logits.detach().softmax(dim=1).max(dim=1)  # (N, H, W) each
    confident = confidence >= threshold
    unlabeled = labels == IGNORE_INDEX
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
        super().__init__(config, classes)
        semi = config.semiseg
        # Loss against the class memory bank's prototypes, then push this batch's class means (eq. 7); the bank
        # is a buffer of this module, so checkpoints carry it and --resume restores it.
        self.contrastive = ElementwiseContrastiveLoss(
            self.num_classes, semi.embedding_dim, semi.queue_len, semi.temperature
        )

    def total_epochs(self) -> int | None:
        return sum(self.config.semiseg.stage_epochs)

    def stage_of_epoch(self, epoch: int) -> str:
        return stage_of_epoch(epoch, self.config.semiseg.stage_epochs)

    def compute_losses(self, batch: dict[str, Any], stage: str) -> dict[str, torch.Tensor]:
        """The stage's loss (``"loss"``) and its parts; pushes this batch's class means into the bank."""
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        outputs = self.model(images)  # logits (N, K, H, W), embedding (N, D, H/4, W/4)
        threshold = self.config.semiseg.pseudo_label_threshold
        contrastive_labels = labels
        embeddings = outputs["embedding"]
        parts: dict[str, torch.Tensor] = {}
        if stage == "pseudo":
            contrastive_labels, stats = pseudo_labels(outputs["logits"], labels, threshold)
            parts.update(stats)
            unlabeled = batch.get("unlabeled")
            if unlabeled is not None:
                extra = self.model(unlabeled["image"])
                hidden = torch.full_like(extra["logits"][:, 0], IGNORE_INDEX, dtype=torch.long)
                extra_labels, _ = pseudo_labels(extra["logits"], hidden, threshold)
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
