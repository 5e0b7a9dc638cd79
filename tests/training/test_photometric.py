"""Batched strong photometric augmentation: per-image draws, range, and the blur against torchvision's."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from marsvision.training.photometric import StrongPhotometric, gaussian_blur, shift_hue


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


def test_hue_shift_matches_torchvision_image_by_image():
    torch.manual_seed(0)
    images = torch.rand(5, 3, 7, 9)
    images[0, :, :2] = 0.3  # gray pixels keep their value
    shift = torch.tensor([0.1, -0.3, 0.45, 0.0, -0.05])
    ours = shift_hue(images, shift)
    for image, s, out in zip(images, shift, ours, strict=True):
        torch.testing.assert_close(out, TF.adjust_hue(image, float(s)), atol=1e-5, rtol=0)


def test_saturation_jitter_is_torchvisions_with_a_factor_drawn_per_image():
    torch.manual_seed(1)
    images = torch.rand(6, 3, 5, 5) * 0.5 + 0.25  # saturation 1.3 stays inside [0, 1]
    saturation = StrongPhotometric(
        jitter_probability=1.0, jitter=0.0, grayscale_probability=0, blur_probability=0, saturation=0.3
    )
    out = saturation(images, torch.Generator().manual_seed(0))
    gray = 0.299 * images[:, :1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:]
    factors = ((out - gray) * (images - gray)).sum(dim=(1, 2, 3)) / ((images - gray) ** 2).sum(dim=(1, 2, 3))
    assert float(factors.min()) >= 0.7 - 1e-4 and float(factors.max()) <= 1.3 + 1e-4
    assert len({round(float(f), 4) for f in factors}) == len(factors), "one factor per image"
    for image, factor, result in zip(images, factors, out, strict=True):
        torch.testing.assert_close(result, TF.adjust_saturation(image, float(factor)), atol=1e-4, rtol=0)


def test_a_kernel_size_fixes_the_blurs_extent():
    images = torch.zeros(1, 1, 21, 21)
    images[0, 0, 10, 10] = 1.0
    blurred = StrongPhotometric(jitter_probability=0, blur_probability=1.0, blur_sigma=(2.0, 2.0), blur_kernel_size=5)(
        images, torch.Generator().manual_seed(0)
    )
    reference = TF.gaussian_blur(images[0], kernel_size=[5, 5], sigma=[2.0, 2.0])
    torch.testing.assert_close(blurred[0], reference, atol=1e-6, rtol=0)
    assert blurred[0, 0, 10, 13] == 0, "nothing beyond the kernel's radius of 2"
