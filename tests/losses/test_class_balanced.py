"""Tests for the class-balanced loss baseline (Cui et al. 2019)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from marsvision.losses.class_balanced import ClassBalancedLoss, class_balanced_loss, class_balanced_weights
from marsvision.losses.focal import focal_loss


def test_weights_match_effective_number_formula() -> None:
    counts, beta = [10, 100, 1000], 0.99
    raw = [(1 - beta) / (1 - beta**n) for n in counts]  # 1 / E_n
    expected = torch.tensor([w * 3 / sum(raw) for w in raw], dtype=torch.float64)
    torch.testing.assert_close(class_balanced_weights(counts, beta), expected)


def test_weights_limits_and_empty_class() -> None:
    torch.testing.assert_close(class_balanced_weights([5, 50, 500], 0.0), torch.ones(3, dtype=torch.float64))
    # β → 1: inverse class frequency
    inv = torch.tensor([1 / 5, 1 / 50], dtype=torch.float64)
    torch.testing.assert_close(class_balanced_weights([5, 50], 1 - 1e-12), inv * 2 / inv.sum(), rtol=1e-6, atol=0)
    w = class_balanced_weights([0, 4, 4], 0.9)
    assert w.tolist() == [0.0, 1.0, 1.0]


def test_softmax_and_focal_losses() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(8, 3, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    counts = [3, 30, 300]
    w = class_balanced_weights(counts, 0.999).float()
    expected = (w[targets] * F.cross_entropy(logits, targets, reduction="none")).mean()
    torch.testing.assert_close(class_balanced_loss(logits, targets, counts, beta=0.999), expected)
    torch.testing.assert_close(ClassBalancedLoss(counts, beta=0.999)(logits, targets), expected)
    focal = class_balanced_loss(logits, targets, counts, beta=0.999, loss_type="focal", gamma=1.5)
    torch.testing.assert_close(focal, focal_loss(logits, targets, gamma=1.5, alpha=w))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        class_balanced_weights([1, 2], beta=1.0)
    with pytest.raises(ValueError):
        class_balanced_weights([0, 0], beta=0.9)
    with pytest.raises(ValueError):
        ClassBalancedLoss([1, 2], loss_type="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        class_balanced_loss(torch.randn(2, 3), torch.tensor([0, 1]), [1, 2])
