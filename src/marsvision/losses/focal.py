"""Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection"): a Table 3 baseline of paper 002."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    gamma: float = 2.0,
    alpha: Tensor | Sequence[float] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Softmax focal loss, mean over the samples that are not ignored::

        FL_i = − α_{y_i} (1 − p_i)^γ log p_i,   p_i = softmax(logits_i)[y_i],   L = mean_i FL_i

    γ = 2 is Lin et al.'s value; γ = 0 and α = None give plain cross-entropy. ``alpha`` is a per-class
    weight (K,) (Lin et al.'s α-balancing generalised to K classes); the weighted terms are averaged over the
    samples, not normalised by Σ α as ``F.cross_entropy(weight=...)`` does.

    Args:
        logits: (N, K) class scores.
        targets: (N,) int64 class indices; ``ignore_index`` entries take no part.
        gamma: focusing parameter γ ≥ 0.
        alpha: optional (K,) non-negative class weights.
        ignore_index: target value that is skipped.

    Returns:
        Scalar loss; 0 (attached to ``logits``) when every target is ignored.

    Raises:
        ValueError: on γ < 0, wrong shapes, or an ``alpha`` of the wrong length or with negative entries.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be non-negative, got {gamma}")
    if logits.dim() != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(f"expected logits (N, K) and targets (N,), got {tuple(logits.shape)}, {tuple(targets.shape)}")
    keep = targets != ignore_index  # (N,)
    safe_targets = torch.where(keep, targets, torch.zeros_like(targets)).long()
    log_p = F.log_softmax(logits, dim=1).gather(1, safe_targets.unsqueeze(1)).squeeze(1)  # (N,) log p_i
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p  # (N,)
    if alpha is not None:
        weights = torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device)
        if weights.shape != (logits.shape[1],) or bool((weights < 0).any()):
            raise ValueError(f"alpha must be {logits.shape[1]} non-negative class weights, got {tuple(weights.shape)}")
        loss = weights[safe_targets] * loss
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    return loss.sum() / keep.sum().clamp(min=1)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`.

    Args:
        gamma: γ ≥ 0 (2.0 in Lin et al. 2017).
        alpha: optional (K,) class weights.
        ignore_index: target value that is skipped.

    Raises:
        ValueError: if ``gamma`` < 0 or ``alpha`` has negative entries.
    """

    alpha: Tensor | None

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Sequence[float] | Tensor | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        weights = None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32)
        if weights is not None and (weights.dim() != 1 or bool((weights < 0).any())):
            raise ValueError("alpha must be a 1-D sequence of non-negative class weights")
        self.gamma = gamma
        self.ignore_index = ignore_index
        self.register_buffer("alpha", weights)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return focal_loss(logits, targets, gamma=self.gamma, alpha=self.alpha, ignore_index=self.ignore_index)
