"""Operations on label maps that keep labels discrete (never averaged), so ``IGNORE_INDEX`` stays intact."""

from __future__ import annotations

import torch
from torch import Tensor


def downsample_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour downsampling of a label map to ``size`` = (h, w).

    Rule: output location (i, j) takes the input label at row ⌊i·H/h⌋, column ⌊j·W/w⌋ (exact integer
    arithmetic). This is PyTorch's ``F.interpolate(mode="nearest")`` rule: for an integer factor s = H/h it
    keeps the top-left pixel of every s×s block. Labels are never averaged, so ``IGNORE_INDEX`` stays intact.

    Args:
        labels: (N, H, W) integer labels.
        size: target (h, w).

    Returns:
        (N, h, w) labels, same dtype (the input itself when already of size (h, w)).

    Raises:
        ValueError: if ``labels`` is not 3-D or ``size`` is not positive.
    """
    if labels.dim() != 3:
        raise ValueError(f"expected labels (N, H, W), got {tuple(labels.shape)}")
    h, w = size
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    big_h, big_w = labels.shape[-2:]
    if (big_h, big_w) == (h, w):
        return labels
    rows = torch.arange(h, device=labels.device) * big_h // h  # (h,)
    cols = torch.arange(w, device=labels.device) * big_w // w  # (w,)
    return labels[:, rows][:, :, cols]
