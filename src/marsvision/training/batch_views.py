"""Random views of a whole batch at once, on the batch's device: the per-image views of ``data/views.py``, vectorised.

torchvision's v2 transforms draw one set of parameters per call, so the loader makes views image by image, a
Python round trip (and a few small kernels) per image and view. Here every image still gets its own draws, but
each operation runs once for the batch: the random resized crop, the flips and the rotation are one affine map
per image, sampled with ``grid_sample`` (bilinear; pixels the rotation brings in from outside the crop are
black), and the colour jitter, desaturation and blur are :class:`~marsvision.training.photometric.StrongPhotometric`.
What differs from the per-image transforms: the crop is resampled without antialiasing (it matters only where a
crop larger than the view is shrunk, e.g. 128-px images to 96-px views: at most 1.33× here), the rotation is
bilinear instead of nearest, and the jitter's order is fixed. Draws come from a CPU generator, so the views are
a function of its seed on any device (the training step passes ``step_generator``, which makes resume exact).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from marsvision.data.views import BLUR_SIGMA, CROP_RATIO, ViewAugmentation, blur_kernel_size
from marsvision.training.photometric import StrongPhotometric

CROP_ATTEMPTS = 10
"""Tries at a crop of the drawn area and aspect that fits the image before the central crop (torchvision's)."""


def random_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    generator: torch.Generator,
    ratio: tuple[float, float] = CROP_RATIO,
) -> Tensor:
    """(n, 4) integer boxes ``(top, left, box_height, box_width)`` of random resized crops of a height × width image.

    torchvision's ``RandomResizedCrop`` rule for each image: draw an area share in ``scale`` and a log-uniform
    aspect in ``ratio``, keep the first of :data:`CROP_ATTEMPTS` draws that fits, else the largest central crop
    within ``ratio``; the position is uniform over where the box fits.
    """
    area = height * width
    share = torch.rand(n, CROP_ATTEMPTS, generator=generator) * (scale[1] - scale[0]) + scale[0]
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(torch.rand(n, CROP_ATTEMPTS, generator=generator) * (log_high - log_low) + log_low)
    box_width = torch.sqrt(area * share * aspect).round()
    box_height = torch.sqrt(area * share / aspect).round()
    fits = (box_width > 0) & (box_width <= width) & (box_height > 0) & (box_height <= height)
    first = fits.float().argmax(dim=1, keepdim=True)  # the first attempt that fits (0 when none does)
    found = fits.any(dim=1)
    fallback_width, fallback_height = _central_box(height, width, ratio)
    box_width = torch.where(found, box_width.gather(1, first).squeeze(1), torch.tensor(float(fallback_width)))
    box_height = torch.where(found, box_height.gather(1, first).squeeze(1), torch.tensor(float(fallback_height)))
    top = (torch.rand(n, generator=generator) * (height - box_height + 1)).floor()
    left = (torch.rand(n, generator=generator) * (width - box_width + 1)).floor()
    return torch.stack([top, left, box_height, box_width], dim=1)


def _central_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """(width, height) of the whole image, cut to the nearest aspect within ``ratio`` (torchvision's fallback)."""
    aspect = width / height
    if aspect < ratio[0]:
        return width, round(width / ratio[0])
    if aspect > ratio[1]:
        return round(height * ratio[1]), height
    return width, height


def random_horizontal_flip(images: Tensor, generator: torch.Generator, probability: float) -> Tensor:
    """Each image of (N, C, H, W) mirrored left-right with ``probability`` (the weak view, batched)."""
    flipped = (torch.rand(images.shape[0], generator=generator) < probability).to(images.device)
    return torch.where(flipped.view(-1, 1, 1, 1), images.flip(-1), images)


class BatchViews:
    """Draw one view of every image of a batch (N, C, H, W) in [0, 1] as ``view`` describes; (N, C, size, size)."""

    def __init__(self, view: ViewAugmentation) -> None:
        self.view = view
        brightness, _, saturation, hue = view.jitter_factors  # brightness and contrast share one strength
        self.photometric = StrongPhotometric(
            jitter_probability=view.jitter_probability,
            jitter=brightness,
            grayscale_probability=view.grayscale_probability,
            blur_probability=view.blur_probability,
            blur_sigma=BLUR_SIGMA,
            saturation=saturation,
            hue=hue,
            blur_kernel_size=blur_kernel_size(view.size),
        )

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """The views; ``generator`` (on the CPU) makes every draw reproducible."""
        if images.shape[1] != self.view.channels:
            raise ValueError(f"expected {self.view.channels}-channel images, got shape {tuple(images.shape)}")
        return self.photometric(self.geometry(images, generator), generator)

    def geometry(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """Crop, resize, flips and rotation of each image, drawn per image."""
        n, _, height, width = images.shape
        view = self.view
        boxes = random_crop_boxes(n, height, width, view.crop_scale, generator)
        mirror_x = _signs(n, view.horizontal_flip_probability, generator)
        mirror_y = _signs(n, view.vertical_flip_probability, generator)
        angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(view.rotation_degrees)
        return resample(images, boxes, mirror_x, mirror_y, angle, view.size, black_corners=view.rotation_degrees > 0)


def resample(
    images: Tensor,
    boxes: Tensor,
    mirror_x: Tensor,
    mirror_y: Tensor,
    angle: Tensor,
    size: int,
    black_corners: bool,
) -> Tensor:
    """Views (N, C, size, size) of images (N, C, H, W), one affine sampling grid per image, bilinear.

    View i is box i of ``boxes`` (N, 4: top, left, height, width) resized to ``size``, mirrored where
    ``mirror_x`` / ``mirror_y`` (N,) are −1, rotated by ``angle`` (N,) in radians about its centre.

    With ``black_corners`` what the rotation brings in from outside the box is black (torchvision's rotation of
    the cropped view fills them), else it is the image around the box.
    """
    n, _, height, width = images.shape
    top, left, box_height, box_width = boxes.unbind(1)
    # normalised output coordinates q (in [-1, 1]², pixel centres) are rotated, mirrored, scaled into the box
    cos, sin = torch.cos(angle), torch.sin(angle)
    scale_x, scale_y = box_width / width * mirror_x, box_height / height * mirror_y
    centre_x, centre_y = (2 * left + box_width) / width - 1, (2 * top + box_height) / height - 1
    coefficients = torch.stack(
        [scale_x * cos, -scale_x * sin, centre_x, scale_y * sin, scale_y * cos, centre_y, cos, -sin, sin, cos], 1
    ).to(images.device, images.dtype)
    a = coefficients.view(n, 10, 1, 1).unbind(1)  # each (N, 1, 1)
    q = (torch.arange(size, device=images.device, dtype=images.dtype) * 2 + 1) / size - 1
    qx, qy = q.view(1, 1, size), q.view(1, size, 1)
    grid = torch.stack([a[0] * qx + a[1] * qy + a[2], a[3] * qx + a[4] * qy + a[5]], dim=-1)  # (N, S, S, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if black_corners:
        inside = ((a[6] * qx + a[7] * qy).abs() <= 1) & ((a[8] * qx + a[9] * qy).abs() <= 1)  # (N, S, S)
        out = out * inside.unsqueeze(1)
    return out


def _signs(n: int, probability: float, generator: torch.Generator) -> Tensor:
    """(n,) −1 where an image is mirrored (drawn with ``probability``), else 1."""
    return 1 - 2 * (torch.rand(n, generator=generator) < probability).float()
