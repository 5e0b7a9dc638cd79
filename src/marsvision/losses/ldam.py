"""LDAM loss (Cao et al. 2019, "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss").

A Table 3 baseline of paper 002 (method B-cls, "LDAM-DRW"). Rare classes get larger margins::

    L_LDAM((x, y)) = −log( e^{s(z_y − Δ_y)} / (e^{s(z_y − Δ_y)} + Σ_{j≠y} e^{s z_j}) ),   Δ_j = C / n_j^{1/4}

(Cao et al. 2019, §3; the scale s of the logits comes from their public code, which computes z with a
cosine classifier, :class:`~marsvision.models.classifier_heads.CosineLinear`, and uses s = 30 with C chosen so
that the largest margin is 0.5). DRW, the deferred re-weighting of their Algorithm 1, is a schedule of the
``weight`` argument: none at first, then Cui et al.'s class-balanced weights; as in their code the weighted
losses are averaged with ``F.cross_entropy``'s weighted mean (divided by Σ_i w_{y_i}).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ldam_margins(samples_per_class: Sequence[int] | Tensor, max_margin: float = 0.5) -> Tensor:
    """Δ_j = C / n_j^{1/4} with C such that max_j Δ_j = ``max_margin``; 0 for a class without samples.

    Args:
        samples_per_class: (K,) training counts n_j ≥ 0, at least one positive.
        max_margin: the margin of the rarest class (Cao et al.'s code: 0.5).

    Returns:
        (K,) float32 margins.

    Raises:
        ValueError: on a negative ``max_margin`` or count, or no positive count.
    """
    if max_margin < 0:
        raise ValueError(f"max_margin must be non-negative, got {max_margin}")
    counts = torch.as_tensor(samples_per_class, dtype=torch.float64)
    if counts.dim() != 1 or bool((counts < 0).any()) or not bool((counts > 0).any()):
        raise ValueError("samples_per_class must be 1-D, non-negative, with at least one positive count")
    margins = torch.where(counts > 0, counts.clamp(min=1.0) ** -0.25, torch.zeros_like(counts))
    return (margins * (max_margin / margins.max())).float()


def ldam_loss(
    logits: Tensor, targets: Tensor, margins: Tensor, scale: float = 30.0, weight: Tensor | None = None
) -> Tensor:
    """The LDAM loss of the module docstring: cross-entropy of s · (z − Δ_y e_y).

    Args:
        logits: (N, K) z (cosines in Cao et al.'s code).
        targets: (N,) int64 class indices.
        margins: (K,) Δ, from :func:`ldam_margins`.
        scale: s > 0 (Cao et al.'s code: 30).
        weight: optional (K,) class weights (DRW); the loss is then the weighted mean.

    Raises:
        ValueError: on s ≤ 0 or wrong shapes.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if logits.dim() != 2 or targets.shape != (logits.shape[0],) or margins.shape != (logits.shape[1],):
        raise ValueError(
            f"expected logits (N, K), targets (N,), margins (K,), got {tuple(logits.shape)}, "
            f"{tuple(targets.shape)}, {tuple(margins.shape)}"
        )
    shift = F.one_hot(targets, logits.shape[1]).to(logits.dtype) * margins.to(logits)[targets].unsqueeze(1)
    class_weight = None if weight is None else weight.to(logits)
    return F.cross_entropy(scale * (logits - shift), targets, weight=class_weight)


class LDAMLoss(nn.Module):
    """Module form of :func:`ldam_loss`, with the margins computed once from the class counts.

    Args:
        samples_per_class: (K,) training counts.
        max_margin: the largest margin (0.5 in Cao et al.'s code).
        scale: s (30 in Cao et al.'s code).

    Raises:
        ValueError: on bad counts, a negative ``max_margin`` or s ≤ 0.
    """

    margins: Tensor

    def __init__(self, samples_per_class: Sequence[int] | Tensor, max_margin: float = 0.5, scale: float = 30.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self.register_buffer("margins", ldam_margins(samples_per_class, max_margin))

    def forward(self, logits: Tensor, targets: Tensor, weight: Tensor | None = None) -> Tensor:
        return ldam_loss(logits, targets, self.margins, self.scale, weight)
