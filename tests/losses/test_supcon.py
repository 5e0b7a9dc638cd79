"""Tests for the SupCon baseline (Khosla et al. 2020, L_out)."""

from __future__ import annotations

import math

import pytest
import torch
from lightly.loss import NTXentLoss

from marsvision.losses.supcon import SupConLoss, supcon_loss


def _reference(features: torch.Tensor, labels: list[int], tau: float) -> float:
    """Float64 loops over anchors, Khosla et al. eq. 2, anchors without positives skipped."""
    n, v, _ = features.shape
    z = torch.nn.functional.normalize(features.double().reshape(n * v, -1), dim=1)
    y = [labels[k // v] for k in range(n * v)]
    total, anchors = 0.0, 0
    for i in range(n * v):
        others = [a for a in range(n * v) if a != i]
        positives = [p for p in others if y[p] == y[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / tau) for a in others)
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denominator) for p in positives) / len(positives)
        anchors += 1
    return total / anchors


def test_matches_float64_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(5, 2, 4, generator=gen)
    labels = [0, 1, 0, 2, 1]
    out = supcon_loss(features, torch.tensor(labels), temperature=0.1)
    assert out.item() == pytest.approx(_reference(features, labels, 0.1), rel=1e-5)


def test_hand_computed_cases() -> None:
    # two classes, their two views identical and the classes orthogonal: each anchor's positive scores 1/τ and
    # its two negatives 0, so every anchor costs −log(e^{1/τ} / (e^{1/τ} + 2)) = log(1 + 2 e^{−1/τ})
    apart = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # (N=2, V=2, D=2)
    for tau in (1.0, 0.5):
        expected = math.log(1 + 2 * math.exp(-1 / tau))
        assert supcon_loss(apart, torch.tensor([0, 1]), temperature=tau).item() == pytest.approx(expected, rel=1e-6)
    # one class, views (1, 0), (0, 1) per sample, τ = 1: each anchor meets its twin once (score 1) and two
    # orthogonal views (0); all three are positives: mean −log = log(e + 2) − (0 + 1 + 0)/3
    crossed = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    expected = math.log(math.e + 2) - 1 / 3
    assert supcon_loss(crossed, torch.tensor([0, 0]), temperature=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_single_view_singleton_class_is_skipped() -> None:
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(4, 1, 3, generator=gen)
    labels = [0, 0, 1, 2]  # classes 1 and 2 have no positive with one view
    out = SupConLoss(temperature=0.5)(features, torch.tensor(labels))
    assert out.item() == pytest.approx(_reference(features, labels, 0.5), rel=1e-5)
    alone = torch.randn(3, 1, 3, requires_grad=True)
    zero = supcon_loss(alone, torch.tensor([0, 1, 2]))
    zero.backward()
    assert zero.item() == 0.0 and alone.grad is not None and torch.isfinite(alone.grad).all()


def test_no_labels_equals_lightly_ntxent() -> None:
    gen = torch.Generator().manual_seed(2)
    out0, out1 = torch.randn(6, 8, generator=gen), torch.randn(6, 8, generator=gen)
    expected = NTXentLoss(temperature=0.2)(out0, out1)
    torch.testing.assert_close(supcon_loss(torch.stack([out0, out1], dim=1), temperature=0.2), expected)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        SupConLoss(temperature=0.0)
    with pytest.raises(ValueError):
        supcon_loss(torch.randn(3, 4))
    with pytest.raises(ValueError):
        supcon_loss(torch.randn(3, 2, 4), torch.tensor([0, 1]))
