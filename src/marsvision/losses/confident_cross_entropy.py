"""Cross-entropy against pseudo labels, counting only the confident ones (FixMatch, ClassMix, UniMatch).

    L = Σ_{i: y_i ≠ ignore, c_i ≥ τ} CE(logits_i, y_i) / #{i: y_i ≠ ignore}

The sum runs over the confident pseudo labels, the mean over every location (or image) that has one, so the
weight of the term grows with the confident share (ClassMix, Olsson et al. 2021; UniMatch, Yang et al. 2023:
τ = 0.95; FixMatch, Sohn et al. 2020, eq. 4: τ = 0.95, mean over the unlabeled batch).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX


def confident_cross_entropy(
    logits: Tensor, targets: Tensor, confidence: Tensor, threshold: float, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """The confident pseudo-label cross-entropy of the module docstring (a scalar).

    Args:
        logits: (N, K, H, W) or (N, K).
        targets: (N, H, W) or (N,) pseudo labels, ``ignore_index`` where there is none.
        confidence: same shape as ``targets``, the confidence of each pseudo label.
        threshold: τ, the confidence a pseudo label needs to count in the numerator.
        ignore_index: label value of locations without a pseudo label.

    Raises:
        ValueError: if ``targets`` and ``confidence`` differ in shape.
    """
    if targets.shape != confidence.shape:
        raise ValueError(f"targets {tuple(targets.shape)} and confidence {tuple(confidence.shape)} differ")
    ce = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="none")  # like targets
    counted = targets != ignore_index
    keep = counted & (confidence >= threshold)
    return (ce * keep).sum() / counted.sum().clamp(min=1)


class ConfidentCrossEntropy(nn.Module):
    """Module form of :func:`confident_cross_entropy` with a fixed threshold τ."""

    def __init__(self, threshold: float = 0.95, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor, confidence: Tensor) -> Tensor:
        return confident_cross_entropy(logits, targets, confidence, self.threshold, self.ignore_index)
