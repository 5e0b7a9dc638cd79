"""Augmented views for contrastive and consistency learning.

SimCLR views and the semi-supervised paper's strong views (one :class:`ViewAugmentation` each, from the config),
the weak view, and the item functions that attach views to items (``MultiView``, ``JointView``, ``PaddingAware``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from marsvision.data.transforms import FILL, apply_joint

SIMCLR_JITTER = (0.8, 0.8, 0.8, 0.2)
"""Brightness, contrast, saturation, hue jitter per unit strength (SimCLR appendix A): the colour distortion of
strength s changes brightness, contrast and saturation by factors within 1 ± 0.8 s and hue by ± 0.2 s."""
BLUR_SIGMA = (0.1, 2.0)
BLUR_KERNEL_FRACTION = 0.1
"""SimCLR blurs with σ in [0.1, 2.0] and a kernel 10 % of the image side (appendix A)."""
FLIP_PROBABILITY = 0.5
"""Chance of each random flip: SimCLR's horizontal flip, paper 002's flips, the weak view (torchvision's default)."""
CROP_RATIO = (3 / 4, 4 / 3)
"""Aspect ratios of the random resized crop (Szegedy et al. 2015, as SimCLR and torchvision)."""


def blur_kernel_size(side: int) -> int:
    """Odd Gaussian kernel size for an image of ``side`` pixels: 10 % of the side, at least 3 (SimCLR)."""
    return max(3, int(side * BLUR_KERNEL_FRACTION) // 2 * 2 + 1)


@dataclass(frozen=True, kw_only=True)
class ViewAugmentation:
    """One random view of an image (C, H, W) in [0, 1]: its geometry, then its pixel values.

    Geometry: a random resized crop to ``size`` (area share in ``crop_scale``, aspect in :data:`CROP_RATIO`),
    horizontal and vertical flips, a rotation by an angle within ± ``rotation_degrees`` (corners black). Pixels:
    with ``jitter_probability`` a colour jitter of ``jitter_strength`` s (:data:`SIMCLR_JITTER`; brightness and
    contrast only for one channel), with ``grayscale_probability`` desaturation (colour images), with
    ``blur_probability`` a Gaussian blur (:data:`BLUR_SIGMA`, :func:`blur_kernel_size`). The values come from the
    run's config (``simclr.*`` for SimCLR, ``classification.strong_*`` for paper 002's strong views), where their
    sources are cited. :func:`view_transform` makes such views image by image;
    ``marsvision.training.batch_views.BatchViews`` a whole batch at once.
    """

    size: int
    channels: int
    crop_scale: tuple[float, float]
    horizontal_flip_probability: float
    vertical_flip_probability: float
    rotation_degrees: float
    jitter_probability: float
    jitter_strength: float
    grayscale_probability: float
    blur_probability: float

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")

    @property
    def jitter_factors(self) -> tuple[float, float, float, float]:
        """Brightness, contrast, saturation and hue jitter at this strength (saturation and hue 0 for one channel)."""
        brightness, contrast, saturation, hue = (factor * self.jitter_strength for factor in SIMCLR_JITTER)
        if self.channels == 1:  # saturation and hue mean nothing for one channel (SPEC.md, Method A)
            return brightness, contrast, 0.0, 0.0
        return brightness, contrast, saturation, min(hue, 0.5)


def view_transform(view: ViewAugmentation) -> v2.Compose:
    """The per-image transform (torchvision v2) drawing one view of an image tensor as ``view`` describes."""
    steps: list[Callable] = [v2.RandomResizedCrop(view.size, scale=view.crop_scale, ratio=CROP_RATIO, antialias=True)]
    if view.horizontal_flip_probability > 0:
        steps.append(v2.RandomHorizontalFlip(view.horizontal_flip_probability))
    if view.vertical_flip_probability > 0:
        steps.append(v2.RandomVerticalFlip(view.vertical_flip_probability))
    if view.rotation_degrees > 0:
        steps.append(v2.RandomRotation(view.rotation_degrees, fill=FILL))
    brightness, contrast, saturation, hue = view.jitter_factors
    steps.append(v2.RandomApply([v2.ColorJitter(brightness, contrast, saturation, hue)], p=view.jitter_probability))
    if view.channels == 3 and view.grayscale_probability > 0:
        steps.append(v2.RandomGrayscale(view.grayscale_probability))
    if view.blur_probability > 0:
        blur = v2.GaussianBlur(blur_kernel_size(view.size), sigma=BLUR_SIGMA)
        steps.append(v2.RandomApply([blur], p=view.blur_probability))
    return v2.Compose(steps)


def weak_view() -> v2.RandomHorizontalFlip:
    """Return the weak augmentation of a labeled or pseudo-labeled image: a random horizontal flip.

    Paper 002 (Table 4, "+Strong Aug") found the strong views cost classification accuracy when the
    cross-entropy sees them; FixMatch (Sohn et al. 2020) labels unlabeled images from such a weak view.
    """
    return v2.RandomHorizontalFlip(FLIP_PROBABILITY)


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
    """Item transform for segmentation images: a geometric transform that may pad, and the mask of the image.

    ``item["valid"]`` ((H, W) bool) marks the image's own pixels, so that no pseudo label is given to padding.
    An item with a ``"label"`` map gets the same geometry on it (its padding is the ignore value, which alone
    cannot tell padding from the pixels nobody labeled).
    """

    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        image = item["image"]
        with_ones = torch.cat([image, torch.ones_like(image[:1])])  # the extra channel is 0 where padded
        if "label" in item:
            out, label = apply_joint(self.transform, with_ones, item["label"])
            item = {**item, "label": label}
        else:
            out = self.transform(tv_tensors.Image(with_ones)).as_subclass(torch.Tensor)
        return {**item, "image": out[:-1], "valid": out[-1] > 0.5}
