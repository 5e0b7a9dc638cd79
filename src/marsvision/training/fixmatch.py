"""FixMatch for classification: ``method: cls-fixmatch``, a method beyond the two papers.

Sohn et al., "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence", NeurIPS 2020.

Each unlabeled image comes as a weak view (a horizontal flip) and a strong view (paper 002's strong
augmentation: flips, crop, rotation, colour jitter, grayscale, blur). The model's arg-max on the weak view,
where its softmax confidence reaches τ, is the pseudo label of the strong view (FixMatch eq. 4):

    L = L_x + λ_u · (1/μB) Σ_b 1(max p(y | weak_b) ≥ τ) · CE(p(y | strong_b), argmax p(y | weak_b))

with λ_u = ``consistency.strong_weight`` (1), τ = ``consistency.threshold`` (0.95) and μB the unlabeled batch
(``data.unlabeled_batch_size``). As in FixMatch the pseudo label comes from the training-mode model, without
gradient. With ``data.unlabeled_test_images`` the unlabeled images include the evaluation split's, which is
how a rover team would adapt a classifier to the images of later sols before labeling them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from marsvision.losses.confident_cross_entropy import confident_cross_entropy
from marsvision.training.classification import CrossEntropyClassification
from marsvision.training.data import Stream


class FixMatchClassification(CrossEntropyClassification):
    """Cross-entropy + FixMatch's confident pseudo-label loss on strong views (see the module docstring)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled-weak-strong")
    loss_weights: ClassVar[dict[str, str]] = {"strong": "consistency.strong_weight"}

    def extra_parts(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        threshold = self.config.consistency.threshold
        weak, strong = batch["unlabeled-weak-strong"]["views"][:2]  # (M, C, H, W) each
        with torch.no_grad():
            confidence, pseudo = self(weak).float().softmax(dim=1).max(dim=1)  # (M,) each
        return {
            "strong": confident_cross_entropy(self(strong), pseudo, confidence, threshold),
            "confident_fraction": (confidence >= threshold).float().mean(),
        }
