"""Augmented views for contrastive and consistency learning.

SimCLR views, the semi-supervised paper's shape and pixel augmentations, the weak view, and ``MultiView``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from marsvision.data.transforms import FILL

SIMCLR_CROP_SCALE = (0.08, 1.0)
"""Random-resized-crop area range of SimCLR (Chen et al. 2020, appendix A)."""
SIMCLR_JITTER = (0.8, 0.8, 0.8, 0.2)
"""Brightness, contrast, saturation, hue jitter per unit strength (SimCLR appendix A)."""
SIMCLR_JITTER_PROB = 0.8
SIMCLR_GRAYSCALE_PROB = 0.2
SIMCLR_BLUR_PROB = 0.5
SIMCLR_BLUR_SIGMA = (0.1, 2.0)
SIMCLR_BLUR_KERNEL_FRACTION = 0.1
"""SimCLR blurs with probability 0.5, sigma in [0.1, 2.0], a kernel 10 % of the image side (appendix A)."""


def _blur(size: int, sigma: tuple[float, float]) -> v2.GaussianBlur:
    kernel = max(3, int(size * SIMCLR_BLUR_KERNEL_FRACTION) // 2 * 2 + 1)
    return v2.GaussianBlur(kernel, sigma=sigma)


def _pixel_steps(size: int, channels: int, strength: float, blur_prob: float, gray_prob: float) -> list[Callable]:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    brightness, contrast, saturation, hue = (s * strength for s in SIMCLR_JITTER)
    if channels == 1:
        # Saturation and hue mean nothing for one channel: brightness/contrast only (SPEC.md, Method A).
        jitter = v2.ColorJitter(brightness=brightness, contrast=contrast)
    else:
        jitter = v2.ColorJitter(brightness, contrast, saturation, min(hue, 0.5))
    steps: list[Callable] = [v2.RandomApply([jitter], p=SIMCLR_JITTER_PROB)]
    if channels == 3 and gray_prob > 0:
        steps.append(v2.RandomGrayscale(gray_prob))
    if blur_prob > 0:
        steps.append(v2.RandomApply([_blur(size, SIMCLR_BLUR_SIGMA)], p=blur_prob))
    return steps


def simclr_view_transform(
    size: int,
    channels: int = 1,
    strength: float = 1.0,
    crop_scale: tuple[float, float] = SIMCLR_CROP_SCALE,
    blur_prob: float = SIMCLR_BLUR_PROB,
) -> v2.Compose:
    """Return the SimCLR view transform on an image tensor ``(C, H, W)`` in [0, 1].

    Random resized crop to ``size``, horizontal flip, colour distortion (brightness/contrast for grayscale;
    plus saturation, hue and random grayscale for RGB) and Gaussian blur.
    """
    steps: list[Callable] = [
        v2.RandomResizedCrop(size, scale=crop_scale, antialias=True),
        v2.RandomHorizontalFlip(),
        *_pixel_steps(size, channels, strength, blur_prob, SIMCLR_GRAYSCALE_PROB),
    ]
    return v2.Compose(steps)


def semi_supervised_shape_steps(size: int, rotation_degrees: float, crop_scale: tuple[float, float]) -> list:
    """Return the shape augmentations of paper 002: flip, crop + resize, rotation (same for image and label).

    The paper names the operations without values; the defaults here are ours and configurable.
    """
    return [
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomResizedCrop(size, scale=crop_scale, antialias=True),
        v2.RandomRotation(rotation_degrees, fill=FILL),
    ]


def semi_supervised_views(
    size: int,
    channels: int = 3,
    rotation_degrees: float = 30.0,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    strength: float = 0.5,
    desaturate_prob: float = 0.2,
    blur_prob: float = 0.5,
) -> v2.Compose:
    """Return paper 002's view transform on an image.

    Shape (flip, crop, resize, rotation) then pixel augmentations (Gaussian blur, colour jitter,
    desaturation).
    """
    steps = semi_supervised_shape_steps(size, rotation_degrees, crop_scale)
    steps += _pixel_steps(size, channels, strength, blur_prob, desaturate_prob)
    return v2.Compose(steps)


def weak_view() -> v2.RandomHorizontalFlip:
    """Return the weak augmentation of a labeled or pseudo-labeled image: a random horizontal flip.

    Paper 002 (Table 4, "+Strong Aug") found the strong views cost classification accuracy when the
    cross-entropy sees them; FixMatch (Sohn et al. 2020) labels unlabeled images from such a weak view.
    """
    return v2.RandomHorizontalFlip()


class JointView:
    """A shape transform on ``(image, label)`` followed by a pixel transform on the image only (picklable)."""

    def __init__(self, shape: Callable, pixel: Callable) -> None:
        self.shape = shape
        self.pixel = pixel

    def __call__(self, image: Any, label: Any) -> tuple[Any, Any]:
        image, label = self.shape(image, label)
        return self.pixel(image), label


class MultiView:
    """Item transform adding ``item["views"] = [v1, v2, …]``.

    ``transform`` a callable: ``n_views`` independent draws of it; a sequence of callables: one view each, in
    order (FixMatch's weak and strong view of one image).
    """

    def __init__(self, transform: Callable | Sequence[Callable], n_views: int = 2) -> None:
        transforms = list(transform) if isinstance(transform, Sequence) else [transform] * n_views
        if not transforms:
            raise ValueError("MultiView needs at least one view")
        self.transforms = transforms

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        image = tv_tensors.Image(item["image"])
        return {**item, "views": [transform(image).as_subclass(torch.Tensor) for transform in self.transforms]}


class PaddingAware:
    """Item transform for unlabeled segmentation images: a geometric transform that may pad, and the mask.

    ``item["valid"]`` ((H, W) bool) marks the image's own pixels, so that no pseudo label is given to padding.
    """

    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        image = item["image"]
        with_ones = torch.cat([image, torch.ones_like(image[:1])])  # the extra channel is 0 where padded
        out = self.transform(tv_tensors.Image(with_ones)).as_subclass(torch.Tensor)
        return {**item, "image": out[:-1], "valid": out[-1] > 0.5}
