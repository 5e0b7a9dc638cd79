"""Joint (image, label) transforms for segmentation and classification (torchvision transforms v2).

Labels travel as ``tv_tensors.Mask`` so that geometric transforms resize them with nearest-neighbour
interpolation and pad them with the ignore value, and pixel transforms leave them alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from marsvision.data.classes import IGNORE_INDEX

JointTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""A callable on ``(image, label)`` returning the transformed pair."""

FILL = {tv_tensors.Image: 0.0, tv_tensors.Mask: IGNORE_INDEX}
"""Padding values: black for images, the ignore value for labels."""


def apply_joint(transform: Callable, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a joint transform to plain tensors; label maps become masks, scalars pass through."""
    wrapped_label = tv_tensors.Mask(label) if label.ndim == 2 else label
    out_image, out_label = transform(tv_tensors.Image(image), wrapped_label)
    return out_image.as_subclass(torch.Tensor), out_label.as_subclass(torch.Tensor)


def segmentation_train_transform(
    size: int,
    scale: tuple[float, float] = (0.5, 2.0),
    hflip: float = 0.5,
    rotation_degrees: float = 0.0,
) -> v2.Compose:
    """Return the usual segmentation training transform, the same geometry for image and label.

    Random rescale, random crop to ``size`` (padding the label with 255), horizontal flip and optional
    small rotation.

    ``scale`` is the range of the random resize relative to ``size`` (torchvision's segmentation reference
    uses 0.5-2.0).
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not 0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must satisfy 0 < min <= max, got {scale}")
    steps: list[Callable] = [
        v2.RandomResize(max(1, int(size * scale[0])), max(1, int(size * scale[1])) + 1),
        v2.RandomCrop(size, pad_if_needed=True, fill=FILL),
        v2.RandomHorizontalFlip(hflip),
    ]
    if rotation_degrees > 0:
        steps.append(v2.RandomRotation(rotation_degrees, fill=FILL))
    return v2.Compose(steps)
