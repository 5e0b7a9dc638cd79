"""Tests for the class-balanced loss baseline (Cui et al. 2019)."""

from __future__ import annotations

import math

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


def test_hand_computed_case() -> None:
    """Counts (1, 3), β = 0.5: E_1 = 1 and E_3 = (1 − 0.125) / 0.5 = 7/4, so the raw weights (1, 4/7) scale to
    Σ w = 2 as (14/11, 8/11). Sample 0: logits (0, 0), class 0, p = 1/2; sample 1: logits (0, ln 3), class 1,
    p = 3/4."""
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    targets = torch.tensor([0, 1])
    softmax = (14 / 11 * math.log(2.0) + 8 / 11 * math.log(4 / 3)) / 2
    assert class_balanced_loss(logits, targets, [1, 3], beta=0.5).item() == pytest.approx(softmax, rel=1e-6)
    # focal, γ = 2: each term also carries (1 − p)^γ, i.e. 1/4 and 1/16
    focal = (14 / 11 * math.log(2.0) / 4 + 8 / 11 * math.log(4 / 3) / 16) / 2
    value = class_balanced_loss(logits, targets, [1, 3], beta=0.5, loss_type="focal", gamma=2.0)
    assert value.item() == pytest.approx(focal, rel=1e-6)


def test_matches_a_float64_re_derivation() -> None:
    """Weights and loss rebuilt from Cui et al.'s formulas in float64 loops, with nothing from the package."""
    gen = torch.Generator().manual_seed(3)
    logits, targets = torch.randn(7, 4, generator=gen), torch.tensor([0, 1, 1, 2, 3, 3, 3])
    counts, beta, gamma = [2, 9, 40, 400], 0.999, 1.5
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    weights = [w * len(counts) / sum(raw) for w in raw]
    softmax_terms, focal_terms = [], []
    for row, target in zip(logits.double().tolist(), targets.tolist(), strict=True):
        p = math.exp(row[target]) / sum(math.exp(v) for v in row)
        softmax_terms.append(-weights[target] * math.log(p))
        focal_terms.append(-weights[target] * (1 - p) ** gamma * math.log(p))
    softmax = class_balanced_loss(logits, targets, counts, beta=beta)
    assert softmax.item() == pytest.approx(sum(softmax_terms) / len(softmax_terms), rel=1e-5)
    focal = class_balanced_loss(logits, targets, counts, beta=beta, loss_type="focal", gamma=gamma)
    assert focal.item() == pytest.approx(sum(focal_terms) / len(focal_terms), rel=1e-5)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        class_balanced_weights([1, 2], beta=1.0)
    with pytest.raises(ValueError):
        class_balanced_weights([0, 0], beta=0.9)
    with pytest.raises(ValueError):
        ClassBalancedLoss([1, 2], loss_type="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        class_balanced_loss(torch.randn(2, 3), torch.tensor([0, 1]), [1, 2])
