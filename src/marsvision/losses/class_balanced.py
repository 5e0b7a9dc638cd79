"""Class-balanced loss (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples").

A Table 3 baseline of paper 002 (method B-cls): each class is re-weighted by the inverse of its effective
number of samples E_n = (1 − βⁿ) / (1 − β).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.focal import focal_loss

LossType = Literal["softmax", "focal"]


def class_balanced_weights(samples_per_class: Sequence[int] | Tensor, beta: float = 0.9999) -> Tensor:
    """Cui et al.'s class weights w_c = (1 − β) / (1 − β^{n_c}), normalised so that Σ_c w_c = C.

    A class with n_c = 0 (no training sample, e.g. MSL "sun") gets w_c = 0, and C counts the other classes
    only.

    Args:
        samples_per_class: (C,) training-set counts n_c ≥ 0, at least one positive.
        beta: β in [0, 1); β = 0 gives equal weights, β → 1 inverse class frequency.

    Returns:
        (C,) float64 weights.

    Raises:
        ValueError: if β is outside [0, 1), a count is negative or every count is zero.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must lie in [0, 1), got {beta}")
    counts = torch.as_tensor(samples_per_class, dtype=torch.float64)
    if counts.dim() != 1 or bool((counts < 0).any()) or not bool((counts > 0).any()):
        raise ValueError("samples_per_class must be 1-D, non-negative, with at least one positive count")
    present = counts > 0
    effective = (1.0 - beta ** counts[present]) / (1.0 - beta)  # E_n
    weights = torch.zeros_like(counts)
    weights[present] = 1.0 / effective
    return weights * present.sum() / weights.sum()


def class_balanced_loss(
    logits: Tensor,
    targets: Tensor,
    samples_per_class: Sequence[int] | Tensor,
    beta: float = 0.9999,
    loss_type: LossType = "softmax",
    gamma: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Class-balanced loss, mean over the samples that are not ignored::

        CB_i = w_{y_i} · L(logits_i, y_i),   w_c = (1 − β) / (1 − β^{n_c}) normalised to Σ_c w_c = C

    with L = softmax cross-entropy (``"softmax"``) or the softmax focal loss with γ (``"focal"``). The
    weighted terms are averaged over the samples (divided by N, not by Σ w). Cui et al.'s own focal variant is
    sigmoid-based; this one uses :func:`~marsvision.losses.focal.focal_loss`. β is not given by paper 002;
    0.9999 is the largest value of Cui et al.'s search set {0.9, 0.99, 0.999, 0.9999}.

    Args:
        logits: (N, K) class scores.
        targets: (N,) int64 class indices; ``ignore_index`` entries take no part.
        samples_per_class: (K,) training-set counts.
        beta: β in [0, 1).
        loss_type: ``"softmax"`` or ``"focal"``.
        gamma: γ of the focal variant.
        ignore_index: target value that is skipped.

    Raises:
        ValueError: on a bad β, counts, ``loss_type`` or shapes (K must equal the number of counts).
    """
    if loss_type not in ("softmax", "focal"):
        raise ValueError(f"loss_type must be 'softmax' or 'focal', got {loss_type!r}")
    weights = class_balanced_weights(samples_per_class, beta).to(device=logits.device, dtype=logits.dtype)
    if logits.dim() != 2 or weights.shape[0] != logits.shape[1]:
        raise ValueError(f"logits (N, K) must have K = {weights.shape[0]} classes, got {tuple(logits.shape)}")
    return class_weighted_loss(logits, targets, weights, loss_type, gamma, ignore_index)


def class_weighted_loss(
    logits: Tensor,
    targets: Tensor,
    weights: Tensor,
    loss_type: LossType = "softmax",
    gamma: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """mean_i w_{y_i} · L(logits_i, y_i) over non-ignored samples, for given (K,) class weights w."""
    if loss_type == "focal":
        return focal_loss(logits, targets, gamma=gamma, alpha=weights, ignore_index=ignore_index)
    keep = targets != ignore_index  # (N,)
    per_sample = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="none")  # (N,)
    safe_targets = torch.where(keep, targets, torch.zeros_like(targets))
    return (weights[safe_targets] * per_sample).sum() / keep.sum().clamp(min=1)


class ClassBalancedLoss(nn.Module):
    """Module form of :func:`class_balanced_loss`; the class weights are computed once (buffer ``weights``).

    Args:
        samples_per_class: (K,) training-set counts.
        beta: β in [0, 1).
        loss_type: ``"softmax"`` or ``"focal"``.
        gamma: γ of the focal variant.
        ignore_index: target value that is skipped.

    Raises:
        ValueError: on a bad β, counts or ``loss_type``.
    """

    weights: Tensor

    def __init__(
        self,
        samples_per_class: Sequence[int] | Tensor,
        beta: float = 0.9999,
        loss_type: LossType = "softmax",
        gamma: float = 2.0,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if loss_type not in ("softmax", "focal"):
            raise ValueError(f"loss_type must be 'softmax' or 'focal', got {loss_type!r}")
        if gamma < 0:
            raise ValueError(f"gamma must be non-negative, got {gamma}")
        self.register_buffer("weights", class_balanced_weights(samples_per_class, beta).float())
        self.loss_type: LossType = loss_type
        self.gamma = gamma
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        weights = self.weights.to(logits.dtype)
        return class_weighted_loss(logits, targets, weights, self.loss_type, self.gamma, self.ignore_index)
