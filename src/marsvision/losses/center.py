"""Center loss (Wen et al. 2016, "A Discriminative Feature Learning Approach for Deep Face Recognition").

A Table 3 baseline of paper 002 (method B-cls): every class keeps a center c_j of its deep features (the
pooled backbone features that H_cls reads), and the loss pulls each feature towards its class center while the
softmax loss keeps the classes apart. The centers are not learned by back-propagation but follow Wen et al.'s
update rule once per mini-batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from marsvision.losses.distributed import is_distributed


def _check(features: Tensor, targets: Tensor, centers: Tensor) -> None:
    if features.dim() != 2 or targets.shape != (features.shape[0],):
        raise ValueError(
            f"expected features (N, D) and targets (N,), got {tuple(features.shape)}, {tuple(targets.shape)}"
        )
    if centers.dim() != 2 or centers.shape[1] != features.shape[1]:
        raise ValueError(f"centers {tuple(centers.shape)} do not fit features of dimension {features.shape[1]}")


def center_loss(features: Tensor, targets: Tensor, centers: Tensor) -> Tensor:
    """Wen et al.'s center loss as a batch mean::

        L_C = 1/(2N) Σ_i ‖x_i − c_{y_i}‖²

    Wen et al. sum over the mini-batch, as they sum the softmax loss; with marsvision's mean cross-entropy the
    mean keeps their ratio λ between the two. The centers get no gradient (they follow :func:`updated_centers`).

    Args:
        features: (N, D) deep features x_i.
        targets: (N,) int64 class indices y_i.
        centers: (K, D) class centers.

    Returns:
        Scalar loss; 0 (attached to ``features``) for an empty batch.

    Raises:
        ValueError: on mismatched shapes.
    """
    _check(features, targets, centers)
    if features.shape[0] == 0:
        return features.sum() * 0.0
    differences = features - centers.detach()[targets]  # (N, D)
    return 0.5 * differences.pow(2).sum(dim=1).mean()


def updated_centers(class_sums: Tensor, class_counts: Tensor, centers: Tensor, alpha: float = 0.5) -> Tensor:
    """Wen et al.'s center update, from a batch's per-class feature sums and counts::

        Δc_j = Σ_i δ(y_i = j) (c_j − x_i) / (1 + Σ_i δ(y_i = j)),    c_j ← c_j − α Δc_j

    with Σ_i δ(y_i = j)(c_j − x_i) = n_j c_j − Σ_{i: y_i = j} x_i. A class absent from the batch keeps its center.

    Args:
        class_sums: (K, D) Σ_{i: y_i = j} x_i.
        class_counts: (K,) n_j.
        centers: (K, D) current centers.
        alpha: the center learning rate α in [0, 1] (Wen et al.: 0.5).

    Returns:
        (K, D) new centers.

    Raises:
        ValueError: if α is outside [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    counts = class_counts.to(centers.dtype).unsqueeze(1)  # (K, 1)
    delta = (counts * centers - class_sums) / (1.0 + counts)
    return centers - alpha * delta


class CenterLoss(nn.Module):
    """Class centers (a buffer, in checkpoints) + :func:`center_loss` + Wen et al.'s center update.

    ``forward(features, targets)`` returns the loss against the current centers; :meth:`update` then moves the
    centers towards the batch (:func:`updated_centers`). Under ``torch.distributed`` the update sums the batch
    over every rank first, so all ranks keep the same centers; call it on every rank.

    Args:
        num_classes: K.
        feature_dim: D.
        alpha: α of the center update (Wen et al.: 0.5).

    Raises:
        ValueError: if a size is not positive or α is outside [0, 1].
    """

    centers: Tensor

    def __init__(self, num_classes: int, feature_dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        if min(num_classes, feature_dim) < 1:
            raise ValueError(f"num_classes and feature_dim must be positive, got {num_classes}, {feature_dim}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha
        # Wen et al. do not say how the centers start; zeros make the first updates pull them to the class means.
        self.register_buffer("centers", torch.zeros(num_classes, feature_dim))

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        return center_loss(features, targets, self.centers)

    @torch.no_grad()
    def update(self, features: Tensor, targets: Tensor) -> None:
        """Move the center of every class in the batch by :func:`updated_centers` (features detached)."""
        _check(features, targets, self.centers)
        features = features.detach().to(self.centers.dtype)
        sums = torch.zeros_like(self.centers).index_add_(0, targets, features)
        counts = torch.bincount(targets, minlength=self.centers.shape[0]).to(self.centers.dtype)
        if is_distributed():
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        self.centers.copy_(updated_centers(sums, counts, self.centers, self.alpha))
