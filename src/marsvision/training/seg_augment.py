"""Data mixing for the semi-supervised segmentation baselines (Method B-seg, Table 8), as pure functions.

A mask is a bool tensor (N, H, W); :func:`mix` takes the masked pixels from one batch and the rest from
another, for images (N, C, H, W), label maps (N, H, W) and per-pixel confidences (N, H, W) alike, so image and
label always stay aligned.

* CutOut (DeVries & Taylor 2017): one box of ``ratio``·H × ``ratio``·W per image is blanked; in the
  semi-supervised setting the blanked pixels also lose their (pseudo) label.
* CutMix (Yun et al. 2019; for segmentation consistency, French et al. 2020): one box covering ``area`` of the
  image, random aspect ratio, pasted from a partner image.
* ClassMix (Olsson et al. 2021): the pixels of half of the classes predicted in an image (rounded up), pasted
  onto a partner image.

Random draws take an optional ``torch.Generator`` so tests and resumed runs can replay them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from marsvision.data.classes import IGNORE_INDEX


def _randint(high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in [0, high)."""
    return int(torch.randint(high, (1,), generator=generator))


def _box_mask(n: int, height: int, width: int, box_h: int, box_w: int, generator: torch.Generator | None) -> Tensor:
    """(N, H, W) masks, each one box of box_h × box_w placed uniformly, entirely inside the image."""
    masks = torch.zeros(n, height, width, dtype=torch.bool)
    for i in range(n):
        top = _randint(height - box_h + 1, generator)
        left = _randint(width - box_w + 1, generator)
        masks[i, top : top + box_h, left : left + box_w] = True
    return masks


def cutout_mask(
    n: int, height: int, width: int, ratio: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """CutOut boxes: per image one box of round(ratio·H) × round(ratio·W) pixels, fully inside the image.

    The box covers ratio² of the image (exactly, when ratio·H and ratio·W are integers).

    Returns:
        (N, H, W) bool, True inside the box (the pixels to blank).

    Raises:
        ValueError: if ``ratio`` is not in (0, 1] or a size is not positive.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"cutout ratio must be in (0, 1], got {ratio}")
    if min(n, height, width) < 1:
        raise ValueError(f"n, height and width must be positive, got {(n, height, width)}")
    box_h, box_w = max(1, round(ratio * height)), max(1, round(ratio * width))
    return _box_mask(n, height, width, box_h, box_w, generator)


def cutmix_box_mask(
    n: int,
    height: int,
    width: int,
    area: float = 0.5,
    generator: torch.Generator | None = None,
    max_aspect: float = 2.0,
) -> Tensor:
    """CutMix boxes: per image one box covering ``area`` of the image with a random aspect ratio.

    The aspect ratio (box height / box width, relative to the image's) is log-uniform in
    [1/max_aspect, max_aspect]; the box sides are rounded and clipped to the image, so the covered share is
    ``area`` up to one row or column of pixels.

    Returns:
        (N, H, W) bool, True inside the box (the pixels taken from the partner image).

    Raises:
        ValueError: if ``area`` is not in (0, 1], ``max_aspect`` < 1 or a size is not positive.
    """
    if not 0 < area <= 1:
        raise ValueError(f"cutmix area must be in (0, 1], got {area}")
    if max_aspect < 1:
        raise ValueError(f"max_aspect must be ≥ 1, got {max_aspect}")
    if min(n, height, width) < 1:
        raise ValueError(f"n, height and width must be positive, got {(n, height, width)}")
    masks = torch.zeros(n, height, width, dtype=torch.bool)
    log_range = math.log(max_aspect)
    for i in range(n):
        aspect = math.exp((2 * float(torch.rand(1, generator=generator)) - 1) * log_range)
        box_h = min(height, max(1, round(height * math.sqrt(area * aspect))))
        box_w = min(width, max(1, round(area * height * width / box_h)))
        masks[i] = _box_mask(1, height, width, box_h, box_w, generator)[0]
    return masks


def classmix_mask(labels: Tensor, generator: torch.Generator | None = None, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """ClassMix masks: per image, the pixels of ⌈k/2⌉ of the k classes present, chosen at random.

    Args:
        labels: (N, H, W) integer (pseudo) labels; ``ignore_index`` pixels are never selected.
        generator: generator of the random class choice.
        ignore_index: label value that is no class.

    Returns:
        (N, H, W) bool, True where the pixel's class is among the chosen ones.

    Raises:
        ValueError: if ``labels`` is not (N, H, W).
    """
    if labels.dim() != 3:
        raise ValueError(f"expected labels (N, H, W), got {tuple(labels.shape)}")
    masks = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for i, image_labels in enumerate(labels):
        present = torch.unique(image_labels)
        present = present[present != ignore_index]
        if len(present) == 0:
            continue
        order = torch.randperm(len(present), generator=generator).to(present.device)
        chosen = present[order[: (len(present) + 1) // 2]]
        masks[i] = torch.isin(image_labels, chosen)
    return masks


def mix(source: Tensor, target: Tensor | float | int, mask: Tensor) -> Tensor:
    """Pixels of ``source`` where ``mask`` is True, of ``target`` elsewhere.

    Args:
        source: (N, H, W) or (N, C, H, W).
        target: a tensor of the same shape, or a scalar fill (0 for a blanked image, ``IGNORE_INDEX`` for a
            label map that loses its labels).
        mask: (N, H, W) bool, broadcast over the channel dimension.

    Returns:
        A tensor shaped and typed like ``source``.

    Raises:
        ValueError: if the mask does not match the batch and spatial size of ``source``.
    """
    if mask.dim() != 3 or source.dim() not in (3, 4) or mask.shape != (source.shape[0], *source.shape[-2:]):
        raise ValueError(f"mask {tuple(mask.shape)} does not fit a batch {tuple(source.shape)}")
    mask = mask.to(source.device)
    if source.dim() == 4:
        mask = mask.unsqueeze(1)
    if not isinstance(target, Tensor):
        target = torch.full_like(source, target)
    return torch.where(mask, source, target.to(source.dtype))
