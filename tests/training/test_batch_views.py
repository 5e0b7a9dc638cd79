"""Batched views: the same geometry and statistics as torchvision's per-image views, reproducible per generator."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from marsvision.data.views import ViewAugmentation, view_transform
from marsvision.training.batch_views import BatchViews, random_crop_boxes, random_horizontal_flip, resample

SIMCLR = ViewAugmentation(
    size=24,
    channels=1,
    crop_scale=(0.2, 1.0),
    horizontal_flip_probability=0.5,
    vertical_flip_probability=0.0,
    rotation_degrees=0.0,
    jitter_probability=0.8,
    jitter_strength=0.5,
    grayscale_probability=0.2,
    blur_probability=0.5,
)
STRONG = ViewAugmentation(
    **{**SIMCLR.__dict__, "channels": 3, "vertical_flip_probability": 0.5, "rotation_degrees": 30.0}
)
NO_PIXEL_CHANGES = {"jitter_probability": 0.0, "grayscale_probability": 0.0, "blur_probability": 0.0}


def identity_draws(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.ones(n), torch.ones(n), torch.zeros(n)


def test_an_unrotated_box_of_the_views_size_is_the_images_pixels():
    images = torch.rand(3, 2, 20, 30)
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0], [5.0, 11.0, 8.0, 8.0], [12.0, 22.0, 8.0, 8.0]])
    out = resample(images, boxes, *identity_draws(3), size=8, black_corners=False)
    for image, (top, left, _, _), view in zip(images, boxes.long().tolist(), out, strict=True):
        torch.testing.assert_close(view, image[:, top : top + 8, left : left + 8])


def test_mirrors_and_a_quarter_turn_move_pixels_exactly():
    image = torch.rand(1, 1, 6, 6)
    whole = torch.tensor([[0.0, 0.0, 6.0, 6.0]])
    minus, plus, zero = torch.tensor([-1.0]), torch.tensor([1.0]), torch.tensor([0.0])
    torch.testing.assert_close(resample(image, whole, minus, plus, zero, 6, False), image.flip(-1))
    torch.testing.assert_close(resample(image, whole, plus, minus, zero, 6, False), image.flip(-2))
    quarter = resample(image, whole, plus, plus, torch.tensor([math.pi / 2]), 6, True)
    torch.testing.assert_close(quarter, torch.rot90(image, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotated_corners_are_black_only_when_asked():
    image = torch.ones(1, 1, 16, 16)
    box = torch.tensor([[4.0, 4.0, 8.0, 8.0]])  # image all around the box
    eighth = torch.tensor([math.pi / 4])
    black = resample(image, box, torch.ones(1), torch.ones(1), eighth, 8, black_corners=True)
    around = resample(image, box, torch.ones(1), torch.ones(1), eighth, 8, black_corners=False)
    assert black[0, 0, 0, 0] == 0 and black[0, 0, 4, 4] == 1
    torch.testing.assert_close(around, torch.ones_like(around))


def test_crop_boxes_follow_torchvisions_rule():
    generator = torch.Generator().manual_seed(0)
    boxes = random_crop_boxes(4000, 40, 60, (0.2, 1.0), generator)
    top, left, height, width = boxes.unbind(1)
    assert bool(((top >= 0) & (left >= 0) & (top + height <= 40) & (left + width <= 60)).all())
    assert bool((boxes == boxes.round()).all())
    share = height * width / (40 * 60)
    assert float(share.min()) >= 0.2 * 0.9 and float(share.max()) <= 1.0
    aspect = width / height
    assert float(aspect.min()) >= 3 / 4 * 0.9 and float(aspect.max()) <= 4 / 3 * 1.1  # rounding to whole pixels
    torch.manual_seed(0)
    reference = torch.tensor(
        [v2.RandomResizedCrop.get_params(torch.empty(1, 40, 60), [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)],
        dtype=torch.float,
    )
    for ours, theirs in zip(boxes.unbind(1), reference.unbind(1), strict=True):  # top, left, height, width
        assert float(ours.mean()) == pytest.approx(float(theirs.mean()), rel=0.04, abs=0.3)
        assert float(ours.std()) == pytest.approx(float(theirs.std()), rel=0.08, abs=0.3)


def test_views_are_reproducible_per_generator_and_drawn_per_image():
    images = torch.rand(12, 3, 32, 32)
    views = BatchViews(STRONG)
    first = views(images, torch.Generator().manual_seed(1))
    assert first.shape == (12, 3, 24, 24)
    assert torch.equal(first, views(images, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, views(images, torch.Generator().manual_seed(2)))
    same = views(images[:1].expand(12, -1, -1, -1), torch.Generator().manual_seed(1))
    assert len({round(float(view.sum()), 3) for view in same}) == 12, "each image has its own draws"
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    with pytest.raises(ValueError, match="3-channel"):
        views(torch.rand(2, 1, 32, 32), torch.Generator())


def flip_share(views: torch.Tensor) -> float:
    """Share of views of a left-to-right ramp that run right to left."""
    columns = views.mean(dim=(1, 2))  # (N, W)
    return float((columns[:, -1] < columns[:, 0]).float().mean())


@pytest.mark.parametrize("view", [SIMCLR, STRONG], ids=["simclr", "strong"])
def test_batched_views_have_the_per_image_views_statistics(view: ViewAugmentation):
    count, side = 600, 40
    ramp = torch.linspace(0.05, 0.95, side).view(1, 1, side).expand(view.channels, side, side).contiguous()
    ramp[:, : side // 4] *= 0.5  # some texture for the jitter's contrast
    torch.manual_seed(0)
    per_image_transform = view_transform(view)
    per_image = torch.stack(
        [per_image_transform(tv_tensors.Image(ramp)).as_subclass(torch.Tensor) for _ in range(count)]
    )
    batched = BatchViews(view)(ramp.expand(count, -1, -1, -1), torch.Generator().manual_seed(0))
    assert batched.shape == per_image.shape
    assert float(batched.mean()) == pytest.approx(float(per_image.mean()), abs=0.02)
    assert float(batched.std()) == pytest.approx(float(per_image.std()), abs=0.02)
    spread = batched.flatten(1).std(dim=1).mean(), per_image.flatten(1).std(dim=1).mean()
    assert float(spread[0]) == pytest.approx(float(spread[1]), abs=0.02)
    assert flip_share(batched) == pytest.approx(flip_share(per_image), abs=0.07)
    assert flip_share(batched) == pytest.approx(0.5, abs=0.07)
    if view.rotation_degrees:
        black = (batched == 0).flatten(1).float().mean(), (per_image == 0).flatten(1).float().mean()
        assert float(black[0]) == pytest.approx(float(black[1]), abs=0.02), "rotated corners"


def test_without_pixel_changes_a_view_only_moves_pixels():
    geometry_only = ViewAugmentation(**{**SIMCLR.__dict__, **NO_PIXEL_CHANGES, "crop_scale": (1.0, 1.0)})
    images = torch.rand(8, 1, 24, 24)
    views = BatchViews(geometry_only)(images, torch.Generator().manual_seed(0))
    # the whole image is a view of the same size, at most mirrored (aspects other than 1 cannot be fitted)
    for image, view in zip(images, views, strict=True):
        assert torch.allclose(view, image, atol=1e-5) or torch.allclose(view, image.flip(-1), atol=1e-5)


def test_the_weak_view_mirrors_about_half_the_images():
    images = torch.rand(400, 1, 4, 4)
    flipped = random_horizontal_flip(images, torch.Generator().manual_seed(0), 0.5)
    mirrored = [bool(torch.equal(a, b.flip(-1))) for a, b in zip(flipped, images, strict=True)]
    kept = [bool(torch.equal(a, b)) for a, b in zip(flipped, images, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert sum(mirrored) / len(mirrored) == pytest.approx(0.5, abs=0.07)
