"""S4L (Zhai et al. 2019, "S4L: Self-Supervised Semi-Supervised Learning"): two Table 3 baselines of paper 002.

L = L_ce + w · L_self, the self-supervised loss L_self taken on the unlabeled and the labeled images alike
(S4L's ``rot_loss_unsup`` and ``rot_loss_sup``: the mean of the two batches' losses), w = 1.

* ``cls-s4l-rotation`` (S4L-Rotation, as their public code trains it): every image of both batches is
  rotated by 0°, 90°, 180° and 270°; a linear head on B's pooled features predicts the rotation (4-way
  cross-entropy), and L_ce is taken on all four rotations of each labeled image (its label copied to each).
* ``cls-s4l-jigsaw``: S4L's paper defines no jigsaw variant; paper 002 reports one, so L_self here is the
  jigsaw task of the same group's "Revisiting self-supervised visual representation learning" (Kolesnikov et
  al. 2019, :mod:`marsvision.training.jigsaw`), and L_ce the cross-entropy on the labeled images as they come.

The rotation and permutation heads train at ``optim.lr`` with H_cls; evaluation classifies the images as they
are (S4L's "unrotated" accuracy).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.training.classification import CrossEntropyClassification
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.jigsaw import TILES, JigsawHead, jigsaw_patches, maximal_hamming_permutations
from marsvision.training.reproducibility import step_generator

ROTATIONS = 4
"""0°, 90°, 180°, 270° (Gidaris et al. 2018; S4L-Rotation)."""


def rotated_copies(images: Tensor) -> tuple[Tensor, Tensor]:
    """Each image rotated by k·90°, k = 0…3: (N, C, S, S) → images (4N, C, S, S) and rotations k (4N,).

    Row 4i + k is image i rotated k times counter-clockwise.

    Raises:
        ValueError: if the images are not square.
    """
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotation needs square images, got {tuple(images.shape[-2:])}")
    copies = torch.stack([torch.rot90(images, k, dims=(-2, -1)) for k in range(ROTATIONS)], dim=1)  # (N, 4, ...)
    rotations = torch.arange(ROTATIONS, device=images.device).repeat(len(images))
    return copies.flatten(0, 1), rotations


class S4LRotation(CrossEntropyClassification):
    """S4L-Rotation: L_ce on the four rotations of each labeled image + w · rotation prediction on both batches."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    loss_weights: ClassVar[dict[str, str]] = {"rotation": "clsbaseline.s4l_weight"}

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.rotation_head = nn.Linear(self.model.feature_channels, ROTATIONS)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images, targets = batch["labeled"]["image"], batch["labeled"]["label"]
        unlabeled = batch["unlabeled"]["image"]
        labeled_copies, labeled_rotations = rotated_copies(images)
        unlabeled_copies, unlabeled_rotations = rotated_copies(unlabeled)
        # one pass over both batches, so BatchNorm sees them together
        outputs = self.model(torch.cat([labeled_copies, unlabeled_copies]))
        rotation_logits = self.rotation_head(outputs["features"]).split([len(labeled_copies), len(unlabeled_copies)])
        parts = {
            "ce": F.cross_entropy(outputs["logits"][: len(labeled_copies)], targets.repeat_interleave(ROTATIONS)),
            "rotation": 0.5
            * (
                F.cross_entropy(rotation_logits[0], labeled_rotations)
                + F.cross_entropy(rotation_logits[1], unlabeled_rotations)
            ),
        }
        parts["loss"] = parts["ce"] + self.weight("rotation") * parts["rotation"]
        return self.log_loss_parts(parts, batch_size=len(images))


class S4LJigsaw(CrossEntropyClassification):
    """S4L with the jigsaw task: L_ce on the labeled images + w · permutation prediction on both batches."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    loss_weights: ClassVar[dict[str, str]] = {"jigsaw": "clsbaseline.s4l_weight"}

    permutations: Tensor

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        cfg = config.clsbaseline
        if not 1 <= cfg.jigsaw_permutations_per_image <= cfg.jigsaw_permutations:
            raise ValueError("clsbaseline.jigsaw_permutations_per_image must lie in [1, jigsaw_permutations]")
        super().__init__(config, classes)
        self.register_buffer("permutations", maximal_hamming_permutations(cfg.jigsaw_permutations), persistent=False)
        self.jigsaw_head = JigsawHead(
            self.model.feature_channels,
            cfg.jigsaw_permutations,
            embedding_dim=cfg.jigsaw_embedding_dim,
            hidden_dim=cfg.jigsaw_hidden_dim,
        )

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The permutation cross-entropy: the mean of the labeled and the unlabeled batch's losses.

        Each image is posed ``jigsaw_permutations_per_image`` puzzles, drawn once for the step (Kolesnikov et al.).
        """
        cfg = self.config.clsbaseline
        generator = step_generator(self.config.seed, self.global_step, self.global_rank)
        batches = [batch["labeled"]["image"], batch["unlabeled"]["image"]]
        tiles = torch.cat([jigsaw_patches(images, cfg.jigsaw_patch_fraction, generator) for images in batches])
        features = self.model.encoder(tiles.flatten(0, 1)).reshape(len(tiles), TILES, -1)  # (N + M, 9, F)
        chosen = torch.randperm(len(self.permutations), generator=generator)[: cfg.jigsaw_permutations_per_image]
        chosen = chosen.to(self.permutations.device)
        losses = []
        for part in features.split([len(images) for images in batches]):
            logits = self.jigsaw_head(part, self.permutations[chosen].expand(len(part), -1, -1))  # (n·m, permutations)
            losses.append(F.cross_entropy(logits, chosen.repeat(len(part))))
        return {"jigsaw": 0.5 * (losses[0] + losses[1])}
