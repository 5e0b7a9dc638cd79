"""Unsupervised similarity loss L_u^cls (paper 002, §4.3, eq. 3; method B-cls): positives only."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def similarity_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Negative mean cosine similarity of two views, no negatives (paper 002, eq. 3)::

        L_u = − mean_u  K(z¹_u, z²_u),   K(u, v) = uᵀv / (‖u‖ ‖v‖)

    Range [−1, 1]; −1 for perfectly aligned views. Weighted by λ_u = 0.2 in the full loss (§4.4). Used alone
    it can collapse (the paper, §4.3); L_s^cls prevents that.

    Args:
        z1: (N, D) embeddings of the first views.
        z2: (N, D) embeddings of the second views (same images, same order).

    Returns:
        Scalar loss.

    Raises:
        ValueError: on mismatched or non-2-D shapes, or an empty batch.
    """
    if z1.dim() != 2 or z1.shape != z2.shape or z1.shape[0] == 0:
        raise ValueError(
            f"expected z1, z2 of the same shape (N, D) with N > 0, got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    return -F.cosine_similarity(z1, z2, dim=1).mean()


class SimilarityLoss(nn.Module):
    """Module form of :func:`similarity_loss` (paper 002, eq. 3)."""

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return similarity_loss(z1, z2)
