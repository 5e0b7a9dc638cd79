"""DenseCL's dense contrastive loss (Wang et al., CVPR 2021), in a queue-free, in-batch, symmetric form.

Two views of each of N images give, per view v, backbone feature maps F_v (N, C, S, S) and dense embeddings
r_v (N, D, S, S) from a 1×1-convolution head; each of the S² locations is one local embedding.

Correspondence (DenseCL's "dense correspondence across views"): location i of view 1 is matched to the location of
view 2 whose backbone feature is most similar, m(i) = argmax_j cos(F_1,i, F_2,j), within the same image. The
matching is not differentiated, and runs in float32 even under bf16 autocast (neighbouring locations' cosines
differ by less than bf16 resolves).

    ℓ(n, i) = −log( exp(r̂_1,i · r̂_2,m(i) / τ) / ( exp(r̂_1,i · r̂_2,m(i) / τ) + Σ_{k≠n} exp(r̂_1,i · ĝ_2,k / τ) ) )
    L_dense = ½ [ mean_{n,i} ℓ₁→₂(n, i) + mean_{n,i} ℓ₂→₁(n, i) ]

with r̂ unit length and ĝ_v,k the unit-length mean of image k's dense embeddings r_v (as given: a head that
normalises per location, like ours, makes it the mean of the r̂). What differs from DenseCL, which has a query
encoder and a momentum key encoder: its loss runs one way (queries against keys that get no gradient), its
negatives are a MoCo queue of 65,536 pooled keys of earlier images; here, as in SimCLR, both views get gradients,
the loss is the mean of both directions, and the negatives are the other images of the batch, so neither a queue
nor a second encoder is needed. (Ours because no library has it: lightly has the correspondence helper and the
dense head, and its DenseCL example builds the momentum-encoder form.) DenseCL trains (1 − λ) L_global + λ L_dense
with λ = 0.5 and τ = 0.2 (its public configs); its dense embeddings have D = 128.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.losses.functional import check_temperature


def _at_least_float32(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def matched_locations(features1: Tensor, features2: Tensor) -> Tensor:
    """m(i) for every location of view 1: (N, C, S, S) twice → (N, S²) indices into view 2's flattened locations."""
    with torch.autocast(features1.device.type, enabled=False):
        f1 = F.normalize(_at_least_float32(features1.detach()).flatten(2), dim=1)  # (N, C, S²)
        f2 = F.normalize(_at_least_float32(features2.detach()).flatten(2), dim=1)
        return torch.einsum("nci,ncj->nij", f1, f2).argmax(dim=2)  # (N, S², S²) → (N, S²)


def _one_direction(anchors: Tensor, keys: Tensor, match: Tensor, temperature: float) -> Tensor:
    """Mean ℓ over anchors (N, D, S²) with positives keys[n, :, match[n, i]] and the other images' pooled keys."""
    n = anchors.shape[0]
    anchors = F.normalize(anchors, dim=1)
    positives = keys.gather(2, match.unsqueeze(1).expand(-1, keys.shape[1], -1))  # (N, D, S²)
    positive_logits = (anchors * F.normalize(positives, dim=1)).sum(1) / temperature  # (N, S²)
    pooled = F.normalize(keys.mean(dim=2), dim=1)  # (N, D): ĝ of every image
    negative_logits = torch.einsum("ndi,kd->nik", anchors, pooled) / temperature  # (N, S², N)
    own_image = torch.eye(n, dtype=torch.bool, device=anchors.device).unsqueeze(1)  # (N, 1, N)
    negative_logits = negative_logits.masked_fill(own_image, float("-inf"))  # k ≠ n
    logits = torch.cat([positive_logits.unsqueeze(2), negative_logits], dim=2)  # (N, S², 1 + N)
    return -logits.log_softmax(dim=2)[..., 0].mean()


def dense_contrastive_loss(
    dense1: Tensor, dense2: Tensor, features1: Tensor, features2: Tensor, temperature: float = 0.2
) -> Tensor:
    """L_dense of the module docstring (a scalar) for two views' dense embeddings and backbone features.

    Args:
        dense1: (N, D, S, S) dense embeddings of view 1.
        dense2: (N, D, S, S) those of view 2 (row n: the same image).
        features1: (N, C, S, S) backbone features of view 1, which the correspondence is found with.
        features2: (N, C, S, S) those of view 2.
        temperature: τ (DenseCL: 0.2).

    Raises:
        ValueError: ``temperature ≤ 0``, fewer than two images, or shapes that do not pair up.
    """
    check_temperature(temperature)
    if dense1.ndim != 4 or dense1.shape != dense2.shape or features1.shape != features2.shape:
        raise ValueError(
            f"expected two (N, D, S, S) and two (N, C, S, S) maps, got {tuple(dense1.shape)}, "
            f"{tuple(dense2.shape)}, {tuple(features1.shape)}, {tuple(features2.shape)}"
        )
    if features1.shape[0] != dense1.shape[0] or features1.shape[2:] != dense1.shape[2:]:
        raise ValueError(f"features {tuple(features1.shape)} and embeddings {tuple(dense1.shape)} differ in N or S")
    if dense1.shape[0] < 2:
        raise ValueError("the dense loss takes its negatives from other images: give at least two")
    match1, match2 = matched_locations(features1, features2), matched_locations(features2, features1)
    with torch.autocast(dense1.device.type, enabled=False):  # logits of up to 1/τ need more than bf16's 8 bits
        r1, r2 = _at_least_float32(dense1).flatten(2), _at_least_float32(dense2).flatten(2)  # (N, D, S²)
        return (_one_direction(r1, r2, match1, temperature) + _one_direction(r2, r1, match2, temperature)) / 2


class DenseContrastiveLoss(nn.Module):
    """Module form of :func:`dense_contrastive_loss`: ``(dense1, dense2, features1, features2) -> scalar``.

    Raises:
        ValueError: ``temperature ≤ 0``.
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature

    def forward(self, dense1: Tensor, dense2: Tensor, features1: Tensor, features2: Tensor) -> Tensor:
        return dense_contrastive_loss(dense1, dense2, features1, features2, self.temperature)


__all__ = ["DenseContrastiveLoss", "dense_contrastive_loss", "matched_locations"]
