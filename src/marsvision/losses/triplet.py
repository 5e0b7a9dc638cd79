"""Triplet loss (Schroff et al. 2015, "FaceNet: A Unified Embedding for Face Recognition and Clustering").

A Table 3 baseline of paper 002 (method B-cls). Embeddings f(x) lie on the unit sphere; an anchor a should be
closer to a positive p (same class) than to a negative n (another class) by a margin α, in squared distance::

    L = Σ [ ‖f(a) − f(p)‖² − ‖f(a) − f(n)‖² + α ]_+          (Schroff et al. 2015, α = 0.2)

Which triplets of a mini-batch enter the sum (``mining``):

* ``semi-hard`` (Schroff et al.'s triplet selection, what FaceNet trains with): every anchor-positive pair of
  the batch, each with the negative nearest to the anchor among those farther than the positive
  (‖f(a) − f(p)‖² < ‖f(a) − f(n)‖²). FaceNet does not say what to do when no negative is farther; as TensorFlow's
  ``triplet_semihard_loss`` we then take the farthest negative. Mean over the anchor-positive pairs.
* ``batch-all``: the sum above over every (a, p, n) of the batch, as a mean over those triplets.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TripletMining = Literal["semi-hard", "batch-all"]


def _check(margin: float, mining: str) -> None:
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    if mining not in get_args(TripletMining):
        raise ValueError(f"mining must be one of {list(get_args(TripletMining))}, got {mining!r}")


def triplet_loss(
    embeddings: Tensor, labels: Tensor, margin: float = 0.2, mining: TripletMining = "semi-hard"
) -> Tensor:
    """The triplet loss of the module docstring over one batch.

    Args:
        embeddings: (N, D) embeddings; L2-normalised here (FaceNet's ‖f(x)‖₂ = 1).
        labels: (N,) class indices.
        margin: α ≥ 0 (Schroff et al.: 0.2).
        mining: ``semi-hard`` or ``batch-all``.

    Returns:
        Scalar loss; 0 (attached to ``embeddings``) when the batch has no anchor-positive pair with a negative.

    Raises:
        ValueError: on a negative margin, an unknown mining or wrong shapes.
    """
    _check(margin, mining)
    if embeddings.dim() != 2 or labels.shape != (embeddings.shape[0],):
        raise ValueError(
            f"expected embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)}, {tuple(labels.shape)}"
        )
    z = F.normalize(embeddings, dim=1)
    distances = (2.0 - 2.0 * z @ z.t()).clamp(min=0.0)  # (N, N) ‖f_i − f_j‖² on the unit sphere
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye  # (N, N) [a, p]
    negative = ~same  # (N, N) [a, n]
    d_ap = distances.unsqueeze(2)  # (N, N, 1) [a, p, ·]
    d_an = distances.unsqueeze(1)  # (N, 1, N) [a, ·, n]
    if mining == "batch-all":
        valid = positive.unsqueeze(2) & negative.unsqueeze(1)  # (N, N, N) [a, p, n]
        hinge = (d_ap - d_an + margin).clamp(min=0.0)
        return torch.where(valid, hinge, torch.zeros_like(hinge)).sum() / valid.sum().clamp(min=1)
    # semi-hard: for each (a, p), the nearest negative beyond the positive, else the farthest negative
    candidates = negative.unsqueeze(1).expand(-1, len(labels), -1)  # (N, N, N) [a, p, n]
    beyond = candidates & (d_an > d_ap)
    infinity = torch.full_like(distances, float("inf")).unsqueeze(1)
    nearest_beyond = torch.where(beyond, d_an, infinity).amin(dim=2)  # (N, N) [a, p]
    farthest = torch.where(negative, distances, torch.full_like(distances, float("-inf"))).amax(dim=1)  # (N,) [a]
    chosen = torch.where(beyond.any(dim=2), nearest_beyond, farthest.unsqueeze(1))  # (N, N)
    pairs = positive & negative.any(dim=1, keepdim=True)  # anchor-positive pairs that have a negative at all
    hinge = (distances - torch.where(pairs, chosen, torch.zeros_like(chosen)) + margin).clamp(min=0.0)
    return torch.where(pairs, hinge, torch.zeros_like(hinge)).sum() / pairs.sum().clamp(min=1)


class TripletLoss(nn.Module):
    """Module form of :func:`triplet_loss`.

    Args:
        margin: α ≥ 0 (0.2 in Schroff et al. 2015).
        mining: ``semi-hard`` (FaceNet's selection) or ``batch-all``.

    Raises:
        ValueError: on a negative margin or an unknown mining.
    """

    def __init__(self, margin: float = 0.2, mining: TripletMining = "semi-hard") -> None:
        super().__init__()
        _check(margin, mining)
        self.margin = margin
        self.mining: TripletMining = mining

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return triplet_loss(embeddings, labels, self.margin, self.mining)
