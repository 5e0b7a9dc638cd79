"""Method B-cls training logic: data streams per loss and the MixUp/CutMix baselines."""

from __future__ import annotations

import pytest
import torch

from marsvision.training.classification import mix_batch, streams_for


def test_streams_per_loss():
    assert streams_for("ours") == ("labeled", "balanced", "unlabeled")
    assert streams_for("ce") == ("labeled",)
    assert streams_for("supcon") == ("labeled", "balanced")
    assert streams_for("pseudo-label") == ("labeled", "unlabeled")
    with pytest.raises(ValueError, match=r"unknown classification\.loss 'dance'"):
        streams_for("dance")


def test_mixup_is_a_convex_combination_with_the_returned_weight():
    torch.manual_seed(0)
    images = torch.rand(6, 3, 8, 8)
    mixed, order, lam = mix_batch(images, "mixup", alpha=1.0)
    assert 0.0 <= lam <= 1.0
    assert torch.allclose(mixed, lam * images + (1 - lam) * images[order])


def test_cutmix_weight_equals_the_share_of_kept_pixels():
    torch.manual_seed(3)
    images = torch.zeros(4, 1, 16, 16)
    images += torch.arange(4.0).view(4, 1, 1, 1) + 1  # image i is filled with i + 1
    mixed, order, lam = mix_batch(images, "cutmix", alpha=1.0)
    kept = (mixed == images).float().mean(dim=(1, 2, 3))  # share of own pixels per image
    for i in range(4):
        if order[i] != i:
            assert kept[i].item() == pytest.approx(lam)
