"""Supervised inter-class contrastive loss L_s^cls (paper 002, §4.2, eq. 2; method B-cls).

Positives are same-class pairs, negatives are only other classes: same-class negatives never appear.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.losses.functional import check_temperature, masked_logsumexp

Positives = Literal["different_images", "same_image"]
_POSITIVES = ("different_images", "same_image")


def inter_class_contrastive_loss(
    z1: Tensor,
    z2: Tensor,
    labels: Tensor,
    temperature: float = 0.2,
    positives: Positives = "different_images",
    reduction: Literal["mean", "none"] = "mean",
) -> Tensor:
    """Supervised inter-class contrastive loss (paper 002, eq. 2; SPEC "Method B-cls").

    SPEC/paper form, for a class-balanced batch holding two different images x_c, x'_c of every class c,
    z¹_c = f(T¹(x_c)), z²_c = f(T²(x'_c)), K(u, v) = uᵀv / (‖u‖ ‖v‖)::

        L_s = − mean_c  log( exp(K(z¹_c, z²_c)/τ) / Σ_{c'=1..C} exp(K(z¹_c, z²_{c'})/τ) )

    What is computed, for any batch. Row i of ``z1``/``z2`` is one sample with label y_i;
    s_ij = K(z1_i, z2_j)/τ (anchors from ``z1``, candidates from ``z2``; one direction, as eq. 2).
    For each anchor i:

    * negatives  N(i) = {k : y_k ≠ y_i}  (same-class rows are never negatives);
    * positives  P(i) = {j ≠ i : y_j = y_i} with ``positives="different_images"`` (other rows of the same
      class, i.e. different images), or {i} when i's class has no other row (the two views of its one
      image, SPEC: "classes with fewer than 2 images use two views of their one image"); P(i) = {i} with
      ``positives="same_image"`` (the other view of the same image; other same-class rows take no part);
    * ℓ(i, p) = − log( exp(s_ip) / (exp(s_ip) + Σ_{k ∈ N(i)} exp(s_ik)) ) for p ∈ P(i) (one positive each);
    * ℓ_i = mean_{p ∈ P(i)} ℓ(i, p);  L = mean_i ℓ_i.

    In the paper's batch pass ``z1`` = f(T¹(x_c)) and ``z2`` = f(T²(x'_c)) stacked over classes (C rows, one
    per class, ``labels`` all distinct): every P(i) is {i} and N(i) the C − 1 other rows: eq. 2 exactly.
    A general batch with several images per class (row i = two views of image i) gets positives from the
    other images of the class and, in the denominator, every row of the other classes; z2_i itself then takes
    no part in anchor i's term. When every row is its
    own class, L is the one-directional InfoNCE of eq. 1 (cross-view negatives only). With a single class
    there are no negatives and L = 0 (finite, zero gradient).

    Paper value: τ = 0.2 (§4.4).

    Args:
        z1: (N, D) anchor embeddings.
        z2: (N, D) candidate embeddings.
        labels: (N,) integer class labels.
        temperature: τ > 0.
        positives: ``"different_images"`` (default, SPEC reading) or ``"same_image"``.
        reduction: ``"mean"`` → scalar L; ``"none"`` → (N,) per-anchor losses ℓ_i.

    Raises:
        ValueError: on τ ≤ 0, an unknown ``positives``/``reduction``, an empty batch or mismatched shapes.
    """
    check_temperature(temperature)
    if positives not in _POSITIVES:
        raise ValueError(f"positives must be one of {_POSITIVES}, got {positives!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if z1.dim() != 2 or z1.shape != z2.shape or labels.shape != (z1.shape[0],) or z1.shape[0] == 0:
        raise ValueError(
            f"expected z1, z2 (N, D) with N > 0 and labels (N,), got {tuple(z1.shape)}, {tuple(z2.shape)}, "
            f"{tuple(labels.shape)}"
        )
    n = z1.shape[0]
    sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).t() / temperature  # (N, N) s_ij
    same = labels.unsqueeze(0) == labels.unsqueeze(1)  # (N, N)
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    if positives == "same_image":
        positive = eye
    else:
        positive = same & ~eye
        positive = positive | (eye & ~positive.any(dim=1, keepdim=True))  # fall back to {i} if no other image
    negative = ~same  # (N, N)

    negatives_lse = masked_logsumexp(sim, negative, dim=1)  # (N,) log Σ_{k ∈ N(i)} exp(s_ik); −inf: no negatives
    pair_loss = torch.logaddexp(sim, negatives_lse.unsqueeze(1)) - sim  # (N, N) ℓ(i, j) for every j
    pair_loss = torch.where(positive, pair_loss, torch.zeros_like(pair_loss))
    per_anchor = pair_loss.sum(dim=1) / positive.sum(dim=1)  # (N,) ℓ_i; every row has ≥ 1 positive
    return per_anchor.mean() if reduction == "mean" else per_anchor


class InterClassContrastiveLoss(nn.Module):
    """Module form of :func:`inter_class_contrastive_loss` (paper 002, eq. 2).

    Args:
        temperature: τ (0.2 in the paper, §4.4).
        positives: ``"different_images"`` (SPEC reading) or ``"same_image"``.

    Raises:
        ValueError: if ``temperature`` ≤ 0 or ``positives`` is unknown.
    """

    def __init__(self, temperature: float = 0.2, positives: Positives = "different_images") -> None:
        super().__init__()
        check_temperature(temperature)
        if positives not in _POSITIVES:
            raise ValueError(f"positives must be one of {_POSITIVES}, got {positives!r}")
        self.temperature = temperature
        self.positives: Positives = positives

    def forward(self, z1: Tensor, z2: Tensor, labels: Tensor) -> Tensor:
        return inter_class_contrastive_loss(z1, z2, labels, temperature=self.temperature, positives=self.positives)
