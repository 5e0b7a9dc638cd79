"""Strong photometric augmentation of a whole batch at once, on the batch's device (FixMatch / UniMatch views).

Weak-to-strong consistency methods compare a prediction on a weakly augmented image with one on a strongly
augmented copy of the *same geometry*, so the strong view only changes pixel values: colour jitter
(brightness and contrast, and for colour images optionally saturation and hue), random grayscale (colour images)
and Gaussian blur, each drawn per image as in UniMatch's strong pipeline (Yang et al. 2023, after FixMatch's
RandAugment-style photometric operations). torchvision's v2 transforms draw one set of parameters per call; a
per-image loop would cost a Python round trip per image, so the draws here are vectorised over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights, as torchvision's ``rgb_to_grayscale``."""


@dataclass(frozen=True)
class StrongPhotometric:
    """Per-image strong photometric augmentation of a batch (N, C, H, W) in [0, 1].

    Args:
        jitter_probability: chance that an image gets brightness and contrast jitter (UniMatch: 0.8).
        jitter: brightness and contrast factors are drawn from [1 − jitter, 1 + jitter] (UniMatch: 0.5).
        grayscale_probability: chance that a colour image becomes gray (UniMatch: 0.2; ignored for 1 channel).
        blur_probability: chance of a Gaussian blur (UniMatch: 0.5).
        blur_sigma: range of the blur's σ in pixels (SimCLR and UniMatch: 0.1 to 2.0).
        saturation: colour images' saturation factor is drawn from [1 − saturation, 1 + saturation] within the
            jitter (SimCLR's colour distortion: 0.8 s; UniMatch's strong views: none).
        hue: colour images' hue is shifted by a draw from [−hue, hue] (a share of the colour circle, at most 0.5)
            within the jitter (SimCLR: 0.2 s; UniMatch: none).
        blur_kernel_size: odd size of the blur's kernel (SimCLR: 10 % of the image side); None: ±3 σ_max.

    The jitter changes brightness, contrast, saturation and hue in this order (torchvision's ``ColorJitter``
    draws an order per call).
    """

    jitter_probability: float = 0.8
    jitter: float = 0.5
    grayscale_probability: float = 0.2
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    saturation: float = 0.0
    hue: float = 0.0
    blur_kernel_size: int | None = None

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """The augmented batch; ``generator`` (on the CPU) makes the draws reproducible."""
        n, channels = images.shape[:2]

        def uniform(low: float, high: float) -> Tensor:
            draw = torch.rand(n, generator=generator) * (high - low) + low
            return draw.to(device=images.device, dtype=images.dtype).view(n, 1, 1, 1)

        def chosen(probability: float) -> Tensor:
            return (torch.rand(n, generator=generator) < probability).to(images.device).view(n, 1, 1, 1)

        jittered = chosen(self.jitter_probability)
        brightness = uniform(1 - self.jitter, 1 + self.jitter)
        contrast = uniform(1 - self.jitter, 1 + self.jitter)
        out = (images * brightness).clamp(0, 1)
        mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)  # contrast pivots on the mean gray level
        out = ((out - mean) * contrast + mean).clamp(0, 1)
        if channels == 3 and self.saturation > 0:
            saturation = uniform(1 - self.saturation, 1 + self.saturation)
            gray = _gray(out)
            out = ((out - gray) * saturation + gray).clamp(0, 1)
        if channels == 3 and self.hue > 0:
            out = shift_hue(out, uniform(-self.hue, self.hue).view(n))
        out = torch.where(jittered, out, images)
        if channels == 3:
            out = torch.where(chosen(self.grayscale_probability), _gray(out).expand_as(out), out)
        sigma = uniform(*self.blur_sigma).view(n)
        radius = None if self.blur_kernel_size is None else self.blur_kernel_size // 2
        return torch.where(chosen(self.blur_probability), gaussian_blur(out, sigma, radius), out)


def _gray(images: Tensor) -> Tensor:
    """(N, 1, H, W) gray level of a 1- or 3-channel batch."""
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor(LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def shift_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of RGB image i of (N, 3, H, W) in [0, 1] by ``shift[i]`` (N,), a share of the colour circle.

    Through the HSV cone (hue, saturation = chroma / value, value = max channel) and back, as torchvision's
    ``adjust_hue``; gray pixels (no chroma) keep their value.
    """
    value, brightest = images.max(dim=1)  # (N, H, W) each
    chroma = value - images.min(dim=1).values
    red, green, blue = images.unbind(dim=1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    sector = torch.stack([((green - blue) / safe) % 6, (blue - red) / safe + 2, (red - green) / safe + 4])
    hue = sector.gather(0, brightest.unsqueeze(0)).squeeze(0) / 6  # in [0, 1)
    hue = torch.where(chroma > 0, hue, torch.zeros_like(hue))
    saturation = chroma / torch.where(value > 0, value, torch.ones_like(value))
    return _hsv_to_rgb((hue + shift.to(images.dtype).view(-1, 1, 1)) % 1.0, saturation, value)


def _hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    """(N, 3, H, W) RGB of (N, H, W) hue in [0, 1), saturation and value: the six sectors of the hexcone."""
    scaled = hue * 6
    sector = scaled.floor().long() % 6
    within = scaled - scaled.floor()
    low = value * (1 - saturation)
    falling = value * (1 - saturation * within)
    rising = value * (1 - saturation * (1 - within))
    # per sector 0..5: red, green and blue among (value, rising, low, falling)
    red = torch.stack([value, falling, low, low, rising, value])
    green = torch.stack([rising, value, value, falling, low, low])
    blue = torch.stack([low, low, rising, value, value, falling])
    index = sector.unsqueeze(0)
    return torch.stack([channel.gather(0, index).squeeze(0) for channel in (red, green, blue)], dim=1)


def gaussian_blur(images: Tensor, sigma: Tensor, radius: int | None = None) -> Tensor:
    """Blur image i of (N, C, H, W) with its own σ_i (N,): separable Gaussian, reflect padding.

    The kernel spans ±``radius`` pixels, by default ±3 σ_max; each image's kernel is normalised to sum 1.
    """
    n, channels, height, width = images.shape
    radius = max(1, math.ceil(3 * float(sigma.max()))) if radius is None else radius
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)  # (k,)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / sigma.view(-1, 1).to(images.dtype)) ** 2)  # (N, k)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(channels, dim=0)  # (N·C, k): one kernel per image and channel
    flat = images.reshape(1, n * channels, height, width)
    pad = min(radius, height - 1, width - 1)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect" if pad == radius else "replicate")
    flat = F.conv2d(flat, kernel.view(-1, 1, 1, kernel.shape[1]), groups=n * channels)  # along the width
    flat = F.conv2d(flat, kernel.view(-1, 1, kernel.shape[1], 1), groups=n * channels)  # along the height
    return flat.view(n, channels, height, width)
