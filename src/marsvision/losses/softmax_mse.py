"""Squared error between class probabilities: the consistency loss of CCT (Ouali et al. 2020, Table 8 of paper 002).

CCT trains each auxiliary decoder g_a^k on a perturbed encoder output to agree with the main decoder g on the
clean one (Ouali et al. 2020, with d the mean squared error)::

    L_u = 1/K Σ_k mean_{pixels, classes} ( softmax(g_a^k(z̃_k)) − softmax(g(z)) )²

with the main decoder's probabilities as a fixed target (detached). This module computes one term of the sum,
averaged over the classes and the valid pixels (CCT: ``F.mse_loss(..., reduction="mean")`` over all of them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def softmax_mse_loss(logits: Tensor, target_probabilities: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean over classes and valid pixels of (softmax(logits) − target)², the target detached.

    Args:
        logits: (N, K, H, W) scores of the decoder being trained.
        target_probabilities: (N, K, H, W) probabilities it should match.
        valid: optional (N, H, W) bool, the pixels that count (e.g. not crop padding); all when None.

    Returns:
        Scalar loss; 0 (attached to ``logits``) when no pixel is valid.

    Raises:
        ValueError: on mismatched shapes.
    """
    if logits.dim() != 4 or target_probabilities.shape != logits.shape:
        raise ValueError(
            f"expected logits and targets (N, K, H, W), got {tuple(logits.shape)}, {tuple(target_probabilities.shape)}"
        )
    squared = (logits.float().softmax(dim=1) - target_probabilities.detach().float()) ** 2  # (N, K, H, W)
    if valid is None:
        return squared.mean()
    if valid.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"valid {tuple(valid.shape)} does not fit logits {tuple(logits.shape)}")
    per_pixel = squared.mean(dim=1)  # (N, H, W)
    return torch.where(valid, per_pixel, torch.zeros_like(per_pixel)).sum() / valid.sum().clamp(min=1)


class SoftmaxMSELoss(nn.Module):
    """Module form of :func:`softmax_mse_loss`."""

    def forward(self, logits: Tensor, target_probabilities: Tensor, valid: Tensor | None = None) -> Tensor:
        return softmax_mse_loss(logits, target_probabilities, valid)
