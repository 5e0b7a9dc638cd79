"""Element-wise inter-class contrastive loss against a class memory bank (paper 002, §5.1, eq. 7).

Method B-seg: every location i of the embedding map f = H_s(B(x)) is pulled towards the prototype of its own
class and pushed away from the prototypes of the other classes, the prototypes being the queue means of a
:class:`~marsvision.losses.memory_bank.ClassMemoryBank`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.labels import downsample_labels
from marsvision.losses.functional import check_temperature, masked_logsumexp
from marsvision.losses.memory_bank import ClassMemoryBank


def elementwise_contrastive_loss(
    features: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    valid: Tensor,
    temperature: float = 0.07,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Element-wise inter-class contrastive loss L_s^seg (paper 002, eq. 7; SPEC "Method B-seg").

    With K(u, v) = uᵀv / (‖u‖ ‖v‖), the class prototypes m̄_c (queue means, detached) and V the set of
    classes whose queue is non-empty (``valid``)::

        L_s = − mean_{i ∈ I}  log( exp(K(f_i, m̄_{y_i})/τ) / Σ_{c ∈ V} exp(K(f_i, m̄_c)/τ) )

    where I = labeled locations whose class is in V: the label map is downsampled nearest to the feature
    resolution (:func:`downsample_labels`), ``ignore_index`` locations and locations of empty-queue classes
    take no part, and empty-queue classes are left out of the denominator. Cost O(N·h·w·C): one (locations, C)
    similarity matrix, never locations × locations.

    Paper value: τ = 0.07 (§5.3).

    Args:
        features: (N, D, h, w) embedding map f (H_s output); gradients flow to it.
        labels: (N, H, W) int labels (H, W ≥ h, w; any size, downsampled nearest), ``ignore_index`` ignored.
        prototypes: (C, D) class prototypes m̄_c; detached here (no gradient to the bank).
        valid: (C,) bool, False for classes with an empty queue.
        temperature: τ > 0.
        ignore_index: label value taking no part.

    Returns:
        Scalar loss in the features' dtype; exactly 0 (still attached to ``features``' graph, no NaN) when no
        location is in I.

    Raises:
        ValueError: on wrong shapes, τ ≤ 0, or a label outside [0, C) that is not ``ignore_index``.
    """
    check_temperature(temperature)
    if features.dim() != 4 or labels.dim() != 3 or prototypes.dim() != 2 or valid.dim() != 1:
        raise ValueError(
            "expected features (N, D, h, w), labels (N, H, W), prototypes (C, D), valid (C,); got "
            f"{tuple(features.shape)}, {tuple(labels.shape)}, {tuple(prototypes.shape)}, {tuple(valid.shape)}"
        )
    n, d, h, w = features.shape
    num_classes = prototypes.shape[0]
    if labels.shape[0] != n or prototypes.shape[1] != d or valid.shape[0] != num_classes:
        raise ValueError(
            f"inconsistent shapes: features {tuple(features.shape)}, labels {tuple(labels.shape)}, "
            f"prototypes {tuple(prototypes.shape)}, valid {tuple(valid.shape)}"
        )
    labels = downsample_labels(labels, (h, w)).long().reshape(-1)  # (L,) with L = N·h·w
    labeled = labels != ignore_index
    if bool(((labels < 0) | (labels >= num_classes))[labeled].any()):
        raise ValueError(f"labels must lie in [0, {num_classes}) or equal {ignore_index}")
    valid = valid.to(device=features.device, dtype=torch.bool)
    target = labels.clamp(0, num_classes - 1)  # (L,) safe index for ignored locations
    used = labeled & valid[target]  # (L,) the set I

    f = F.normalize(features.permute(0, 2, 3, 1).reshape(-1, d), dim=1)  # (L, D)
    m = F.normalize(prototypes.detach().to(f.dtype), dim=1)  # (C, D)
    logits = f @ m.t() / temperature  # (L, C) = K(f_i, m̄_c)/τ
    nll = masked_logsumexp(logits, valid.unsqueeze(0), dim=1) - logits.gather(1, target.unsqueeze(1)).squeeze(1)
    nll = torch.where(used, nll, torch.zeros_like(nll))
    return nll.sum() / used.sum().clamp(min=1)


class ElementwiseContrastiveLoss(nn.Module):
    """Eq. 7 of paper 002 with its memory bank: loss against the bank, then push the batch into the bank.

    ``forward(features, labels)`` downsamples the labels to the feature resolution, computes
    :func:`elementwise_contrastive_loss` against the bank's current prototypes (the bank as it was *before*
    this batch), then, if ``update_bank``, pushes this batch's per-image class means (detached) — "after each
    step" (SPEC "Method B-seg"). Under ``torch.distributed`` the push is a collective: call it on every rank.

    Args:
        num_classes: C (4 terrain classes for AI4Mars in method B-seg).
        dim: embedding dimension D (128 in the paper).
        queue_len: queue length per class (32 in the paper).
        temperature: τ (0.07 in the paper).
        ignore_index: label value taking no part.

    Raises:
        ValueError: if ``temperature`` ≤ 0 or the bank sizes are not positive.
    """

    def __init__(
        self,
        num_classes: int,
        dim: int = 128,
        queue_len: int = 32,
        temperature: float = 0.07,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature
        self.ignore_index = ignore_index
        self.bank = ClassMemoryBank(num_classes, dim, queue_len, ignore_index)

    def forward(self, features: Tensor, labels: Tensor, update_bank: bool = True) -> Tensor:
        small = downsample_labels(labels, (features.shape[-2], features.shape[-1]))  # (N, h, w)
        loss = elementwise_contrastive_loss(
            features,
            small,
            self.bank.prototypes(),
            self.bank.valid(),
            temperature=self.temperature,
            ignore_index=self.ignore_index,
        )
        if update_bank:
            self.bank.push(features, small)
        return loss
