"""Supervised pixel contrastive loss of LESS, "within-image" and "cross-image" (Table 8 of paper 002).

Zhao et al. 2021, "Contrastive Learning for Label Efficient Semantic Segmentation".

Every pixel is an anchor; the pixels of its label are its positives (itself included, as in the authors' code)
and the others its negatives. With l_ij = f_i·f_j / τ on the projections f (L2-normalised by the projection
head, as in the authors' code; the loss does not normalise them), for anchor i with valid
positives P(i) and negatives N(i)::

    L_i = −1/|P(i)| Σ_{p ∈ P(i)} log( e^{l_ip} / (e^{l_ip} + Σ_{n ∈ N(i)} e^{l_in}) )

L is the mean of L_i over the anchors with a positive, in each image (or image pair), then the mean over the
batch (an image without any valid anchor adds 0). Pixels labeled ``ignore_index`` take no part.

* within-image: the pixels of one image contrast with each other;
* cross-image: the pixels of two images (an image and another image's distorted view) are pooled; positives
  come from both images, negatives only from the anchor's own image (the authors' public code,
  ``google-research/supervised_pixel_contrastive_loss``, which the README calls a slightly modified version of
  the paper's losses; τ = 0.07 there).

Every pixel pair is used: the cost is O(B·P²) for P pixels per image (paper 002 notes the sheer number of
pairs), so the features are resized before the loss.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.functional import check_temperature, masked_logsumexp


def _contrast(
    features: Tensor, labels: Tensor, negative_allowed: Tensor | None, temperature: float, ignore_index: int
) -> Tensor:
    """The loss of the module docstring for features (B, P, D) and labels (B, P).

    ``negative_allowed`` (P, P), when given, restricts which pixel pairs may be negatives.
    """
    check_temperature(temperature)
    if features.dim() != 3 or labels.shape != features.shape[:2]:
        raise ValueError(
            f"expected features (B, P, D) and labels (B, P), got {tuple(features.shape)}, {tuple(labels.shape)}"
        )
    logits = features @ features.transpose(1, 2) / temperature  # (B, P, P)
    valid = labels != ignore_index  # (B, P)
    pair_valid = valid.unsqueeze(2) & valid.unsqueeze(1)
    same = labels.unsqueeze(2) == labels.unsqueeze(1)
    positive = same & pair_valid
    negative = ~same & pair_valid
    if negative_allowed is not None:
        negative = negative & negative_allowed
    negative_sum = masked_logsumexp(logits, negative, dim=2).unsqueeze(2)  # (B, P, 1), −inf without negatives
    log_likelihood = logits - torch.logaddexp(logits, negative_sum)  # (B, P, P)
    count = positive.sum(dim=2)  # (B, P) |P(i)|
    per_anchor = -torch.where(positive, log_likelihood, torch.zeros_like(log_likelihood)).sum(dim=2) / count.clamp(
        min=1
    )
    anchors = count > 0
    per_image = torch.where(anchors, per_anchor, torch.zeros_like(per_anchor)).sum(dim=1) / anchors.sum(dim=1).clamp(
        min=1
    )
    return per_image.mean()


def within_image_pixel_contrastive_loss(
    features: Tensor, labels: Tensor, temperature: float = 0.07, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Within-image LESS loss: the pixels of each image contrast with each other.

    Args:
        features: (B, P, D) pixel projections of B images (L2-normalised).
        labels: (B, P) their labels.
        temperature: τ > 0 (the authors' code: 0.07).
        ignore_index: label taking no part.

    Raises:
        ValueError: on τ ≤ 0 or wrong shapes.
    """
    return _contrast(features, labels, None, temperature, ignore_index)


def cross_image_pixel_contrastive_loss(
    features1: Tensor,
    features2: Tensor,
    labels1: Tensor,
    labels2: Tensor,
    temperature: float = 0.07,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Cross-image LESS loss over image pairs (features1[b], features2[b]).

    Positives come from both images of a pair, negatives from the anchor's own image.

    Args:
        features1: (B, P, D) pixel projections of the first image of each pair (L2-normalised).
        features2: (B, P, D) those of the second image.
        labels1: (B, P) the labels of the first images.
        labels2: (B, P) the labels of the second images.
        temperature: τ > 0 (the authors' code: 0.07).
        ignore_index: label taking no part.

    Raises:
        ValueError: on τ ≤ 0 or wrong shapes.
    """
    if features1.shape != features2.shape or labels1.shape != labels2.shape:
        raise ValueError("the two images of a pair must have the same feature and label shapes")
    pixels = features1.shape[1]
    image = torch.arange(2, device=features1.device).repeat_interleave(pixels)  # (2P,) which image
    same_image = image.unsqueeze(0) == image.unsqueeze(1)  # (2P, 2P)
    return _contrast(
        torch.cat([features1, features2], dim=1),
        torch.cat([labels1, labels2], dim=1),
        same_image,
        temperature,
        ignore_index,
    )


class PixelContrastiveLoss(nn.Module):
    """Module form: ``forward(features, labels)`` within-image, or with ``features2, labels2`` cross-image.

    Args:
        temperature: τ (0.07 in the authors' code).
        ignore_index: label taking no part.

    Raises:
        ValueError: if τ ≤ 0.
    """

    def __init__(self, temperature: float = 0.07, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.ignore_index = ignore_index

    def forward(
        self, features: Tensor, labels: Tensor, features2: Tensor | None = None, labels2: Tensor | None = None
    ) -> Tensor:
        if features2 is None or labels2 is None:
            return within_image_pixel_contrastive_loss(features, labels, self.temperature, self.ignore_index)
        return cross_image_pixel_contrastive_loss(
            features, features2, labels, labels2, self.temperature, self.ignore_index
        )
