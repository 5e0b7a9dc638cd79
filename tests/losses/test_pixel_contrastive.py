"""Tests for LESS's supervised pixel contrastive loss (Zhao et al. 2021), within- and cross-image."""

from __future__ import annotations

import math

import pytest
import torch

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.pixel_contrastive import (
    PixelContrastiveLoss,
    cross_image_pixel_contrastive_loss,
    within_image_pixel_contrastive_loss,
)


def _reference(features: torch.Tensor, labels: list[list[int]], tau: float, cross: bool) -> float:
    """Float64 loops: per image (or pair), mean over anchors with a positive of the mean −log over positives."""
    total = 0.0
    for f, y in zip(features.double(), labels, strict=True):
        pixels = len(y)
        half = pixels // 2
        image = [0] * half + [1] * half if cross else [0] * pixels
        anchors = []
        for i in range(pixels):
            if y[i] == IGNORE_INDEX:
                continue
            valid = [j for j in range(pixels) if y[j] != IGNORE_INDEX]
            positives = [j for j in valid if y[j] == y[i]]
            negatives = [j for j in valid if y[j] != y[i] and image[j] == image[i]]
            negative_sum = sum(math.exp(float(f[i] @ f[n]) / tau) for n in negatives)
            terms = []
            for p in positives:
                e = math.exp(float(f[i] @ f[p]) / tau)
                terms.append(-math.log(e / (e + negative_sum)))
            anchors.append(sum(terms) / len(terms))
        total += sum(anchors) / len(anchors) if anchors else 0.0
    return total / len(labels)


def _authors_test_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of the authors' own test: 2 images of 16 pixels, 4 ignored, classes 1-3 of 4 pixels each."""
    values = torch.tensor(sorted([-2, -1] * 2 + [1] * 4 + [2] * 4 + [3] * 4)).view(1, 16).repeat(2, 1)
    labels = torch.where(values < 0, torch.full_like(values, IGNORE_INDEX), values)
    return values.float().unsqueeze(2), labels  # features = the label values, one channel


def test_one_class_has_no_negatives_and_costs_nothing() -> None:
    features = torch.nn.functional.normalize(torch.randn(2, 5, 3), dim=2)
    labels = torch.zeros(2, 5, dtype=torch.long)
    assert within_image_pixel_contrastive_loss(features, labels).item() == pytest.approx(0.0, abs=1e-6)


def test_hand_computed_case() -> None:
    # one image, pixels a, b of class 0 and c of class 1 on the unit circle: a = b = (1, 0), c = (0, 1); τ = 1
    features = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([[0, 0, 1]])
    # anchor a: positives a, b (logit 1), negative c (logit 0): −log(e / (e + 1)) each; same for b
    # anchor c: positive c itself (logit 1), negatives a, b (logit 0): −log(e / (e + 2))
    ab = -math.log(math.e / (math.e + 1))
    expected = (ab + ab + -math.log(math.e / (math.e + 2))) / 3
    assert within_image_pixel_contrastive_loss(features, labels, temperature=1.0).item() == pytest.approx(expected)


def test_matches_the_authors_test_values() -> None:
    # google-research/supervised_pixel_contrastive_loss, contrastive_loss_test.py: 2.4503216 and 5.46027374
    features, labels = _authors_test_batch()
    assert within_image_pixel_contrastive_loss(features, labels, temperature=1.0).item() == pytest.approx(
        2.4503216, rel=1e-6
    )
    cross = cross_image_pixel_contrastive_loss(features, 2 * features, labels, labels, temperature=1.0)
    assert cross.item() == pytest.approx(5.46027374, rel=1e-6)
    swapped = PixelContrastiveLoss(temperature=1.0)(2 * features, labels, features, labels)
    assert swapped.item() == pytest.approx(cross.item(), rel=1e-6)  # symmetric, as the authors test


@pytest.mark.parametrize("cross", [False, True])
def test_matches_float64_loops(cross: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    first = torch.nn.functional.normalize(torch.randn(3, 6, 4, generator=gen), dim=2)
    second = torch.nn.functional.normalize(torch.randn(3, 6, 4, generator=gen), dim=2)
    labels1 = torch.randint(0, 3, (3, 6), generator=gen)
    labels2 = torch.randint(0, 3, (3, 6), generator=gen)
    labels1[0, :2] = IGNORE_INDEX
    if cross:
        loss = cross_image_pixel_contrastive_loss(first, second, labels1, labels2, temperature=0.5)
        pooled, pooled_labels = torch.cat([first, second], dim=1), torch.cat([labels1, labels2], dim=1)
        expected = _reference(pooled, pooled_labels.tolist(), 0.5, cross=True)
    else:
        loss = within_image_pixel_contrastive_loss(first, labels1, temperature=0.5)
        expected = _reference(first, labels1.tolist(), 0.5, cross=False)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_ignored_image_adds_zero_and_bad_arguments_raise() -> None:
    features = torch.nn.functional.normalize(torch.randn(2, 4, 3), dim=2).requires_grad_()
    labels = torch.tensor([[0, 1, 0, 1], [IGNORE_INDEX] * 4])
    loss = within_image_pixel_contrastive_loss(features, labels)
    only_first = within_image_pixel_contrastive_loss(features[:1], labels[:1])
    assert loss.item() == pytest.approx(only_first.item() / 2)
    loss.backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    with pytest.raises(ValueError):
        PixelContrastiveLoss(temperature=0.0)
    with pytest.raises(ValueError):
        within_image_pixel_contrastive_loss(torch.randn(2, 4, 3), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError):
        cross_image_pixel_contrastive_loss(torch.randn(1, 4, 3), torch.randn(1, 5, 3), labels[:1], labels[:1])
