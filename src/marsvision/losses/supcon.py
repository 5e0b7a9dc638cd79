"""Supervised contrastive loss L_out (Khosla et al. 2020, "Supervised Contrastive Learning", eq. 2).

A Table 3 baseline of paper 002 (method B-cls). Unlike the inter-class loss of paper 002, same-class samples
appear in the denominator and every other view in the batch is a contrast sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.losses.functional import check_temperature, masked_logsumexp


def supcon_loss(features: Tensor, labels: Tensor | None = None, temperature: float = 0.07) -> Tensor:
    """SupCon L_out over all N·V views of a batch (Khosla et al. 2020, eq. 2)::

        L = mean_{i ∈ I'}  −1/|P(i)| Σ_{p ∈ P(i)} log( exp(z_i·z_p/τ) / Σ_{a ∈ A(i)} exp(z_i·z_a/τ) )

    I = all N·V views (each one an anchor), A(i) = I minus {i}, P(i) = {p ∈ A(i) : y_p = y_i}; z are the
    L2-normalised features (normalised here). Anchors with an empty P(i) (a single view of a class seen once)
    are left out of the mean (I' = anchors with |P(i)| ≥ 1); 0 (attached) if there is none. Khosla et al.'s
    code also scales by τ / base_τ (base_τ = 0.07, i.e. 1 at τ = 0.07); that factor is not applied here.
    ``labels=None`` makes every sample its own class: L is then SimCLR's NT-Xent (mean over the 2N anchors
    for V = 2, as lightly's ``NTXentLoss``).

    τ = 0.07 is the default of Khosla et al.'s public code; paper 002 does not give its SupCon settings.

    Args:
        features: (N, V, D) embeddings, V views per sample.
        labels: (N,) class labels, or None.
        temperature: τ > 0.

    Raises:
        ValueError: on τ ≤ 0 or wrong shapes.
    """
    check_temperature(temperature)
    if features.dim() != 3 or features.shape[0] == 0:
        raise ValueError(f"expected features (N, V, D) with N > 0, got {tuple(features.shape)}")
    n, views, dim = features.shape
    if labels is None:
        labels = torch.arange(n, device=features.device)
    if labels.shape != (n,):
        raise ValueError(f"expected labels ({n},), got {tuple(labels.shape)}")
    z = F.normalize(features.reshape(n * views, dim), dim=1)  # (N·V, D), row = sample·V + view
    view_labels = labels.repeat_interleave(views)  # (N·V,)
    logits = z @ z.t() / temperature  # (N·V, N·V)
    self_mask = torch.eye(n * views, dtype=torch.bool, device=z.device)
    log_prob = logits - masked_logsumexp(logits, ~self_mask, dim=1).unsqueeze(1)  # (N·V, N·V), a ∈ A(i) = all but i
    positive = (view_labels.unsqueeze(0) == view_labels.unsqueeze(1)) & ~self_mask  # P(i)
    num_positive = positive.sum(dim=1)  # (N·V,)
    positive_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -positive_log_prob / num_positive.clamp(min=1)  # (N·V,)
    has_positive = num_positive > 0
    return torch.where(has_positive, per_anchor, torch.zeros_like(per_anchor)).sum() / has_positive.sum().clamp(min=1)


class SupConLoss(nn.Module):
    """Module form of :func:`supcon_loss`.

    Args:
        temperature: τ (0.07, the default of Khosla et al.'s code).

    Raises:
        ValueError: if ``temperature`` ≤ 0.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature

    def forward(self, features: Tensor, labels: Tensor | None = None) -> Tensor:
        return supcon_loss(features, labels, temperature=self.temperature)
