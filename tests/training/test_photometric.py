"""Batched strong photometric augmentation: per-image draws, range, and the blur against torchvision's."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from marsvision.training.photometric import StrongPhotometric, gaussian_blur


def test_blur_matches_torchvision_image_by_image():
    torch.manual_seed(0)
    images = torch.rand(3, 2, 20, 24)
    sigma = torch.tensor([0.5, 1.0, 1.7])
    ours = gaussian_blur(images, sigma)
    radius = 6  # ceil(3 · 1.7): every image is blurred with a kernel of this size
    for image, s, out in zip(images, sigma, ours, strict=True):
        reference = TF.gaussian_blur(image, kernel_size=[2 * radius + 1] * 2, sigma=[float(s)] * 2)
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_draws_are_per_image_reproducible_and_keep_the_range():
    images = torch.rand(16, 1, 16, 16)
    augment = StrongPhotometric()
    first = augment(images, torch.Generator().manual_seed(3))
    again = augment(images, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and first.shape == images.shape
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    changed = [not torch.allclose(a, b) for a, b in zip(first, images, strict=True)]
    assert 0 < sum(changed) < len(changed) or all(changed), "some images are augmented"
    ratios = {round(float((a.mean() + 1e-3) / (b.mean() + 1e-3)), 3) for a, b in zip(first, images, strict=True)}
    assert len(ratios) > 4, "the parameters are drawn per image, not once per batch"


def test_grayscale_only_touches_colour_images_and_uses_luma():
    colour = torch.rand(8, 3, 8, 8)
    gray = StrongPhotometric(jitter_probability=0, grayscale_probability=1.0, blur_probability=0)
    out = gray(colour, torch.Generator().manual_seed(0))
    luma = 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2]
    for channel in range(3):
        torch.testing.assert_close(out[:, channel], luma)
    single = torch.rand(4, 1, 8, 8)
    assert torch.equal(gray(single, torch.Generator().manual_seed(0)), single)


def test_jitter_by_hand():
    image = torch.full((2, 1, 2, 2), 0.5)
    image[:, :, 0, 0] = 0.1
    jitter = 0.4
    out = StrongPhotometric(jitter_probability=1.0, jitter=jitter, blur_probability=0)(
        image, torch.Generator().manual_seed(7)
    )
    draws = torch.Generator().manual_seed(7)
    torch.rand(2, generator=draws)  # the jitter-or-not draw
    brightness = torch.rand(2, generator=draws) * 2 * jitter + 1 - jitter
    contrast = torch.rand(2, generator=draws) * 2 * jitter + 1 - jitter
    for i in range(2):
        bright = [min(1.0, v * float(brightness[i])) for v in (0.1, 0.5, 0.5, 0.5)]
        mean = sum(bright) / 4
        expected = [min(1.0, max(0.0, (v - mean) * float(contrast[i]) + mean)) for v in bright]
        assert out[i, 0].flatten().tolist() == pytest.approx(expected, abs=1e-6)
