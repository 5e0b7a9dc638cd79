"""Tests for the focal loss baseline."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.focal import FocalLoss, focal_loss


def test_gamma_zero_is_cross_entropy() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(6, 4, generator=gen), torch.randint(0, 4, (6,), generator=gen)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0), F.cross_entropy(logits, targets))


def test_hand_computed_value() -> None:
    # two classes, logits (0, ln 3): p = (1/4, 3/4)
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    targets = torch.tensor([1, 0])
    expected = (-(0.25**2) * math.log(0.75) - (0.75**2) * math.log(0.25)) / 2
    assert focal_loss(logits, targets, gamma=2.0).item() == pytest.approx(expected, rel=1e-6)
    alpha = [2.0, 0.5]
    expected_alpha = (-0.5 * 0.25**2 * math.log(0.75) - 2.0 * 0.75**2 * math.log(0.25)) / 2
    assert FocalLoss(alpha=alpha)(logits, targets).item() == pytest.approx(expected_alpha, rel=1e-6)


def test_ignore_index_and_all_ignored() -> None:
    logits = torch.randn(3, 3, requires_grad=True)
    targets = torch.tensor([0, IGNORE_INDEX, 2])
    torch.testing.assert_close(focal_loss(logits, targets), focal_loss(logits[[0, 2]], targets[[0, 2]]))
    none = focal_loss(logits, torch.full((3,), IGNORE_INDEX))
    none.backward()
    assert none.item() == 0.0
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError):
        FocalLoss(alpha=[1.0, -1.0])
    with pytest.raises(ValueError):
        focal_loss(torch.randn(2, 3), torch.tensor([0, 1]), alpha=[1.0, 1.0])
