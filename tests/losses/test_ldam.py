"""Tests for the LDAM loss (Cao et al. 2019) of the LDAM-DRW baseline."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.losses.ldam import LDAMLoss, ldam_loss, ldam_margins


def _reference(logits: torch.Tensor, targets: list[int], margins: list[float], s: float, weight=None) -> float:
    """Float64 loops: −log(e^{s(z_y − Δ_y)} / (e^{s(z_y − Δ_y)} + Σ_{j≠y} e^{s z_j})), weighted mean."""
    total, norm = 0.0, 0.0
    for z, y in zip(logits.double().tolist(), targets, strict=True):
        shifted = [s * (v - margins[y]) if j == y else s * v for j, v in enumerate(z)]
        w = 1.0 if weight is None else float(weight[y])
        total += -w * (shifted[y] - math.log(sum(math.exp(v) for v in shifted)))
        norm += w
    return total / norm


def test_margins_follow_the_quarter_power_and_peak_at_max_margin() -> None:
    margins = ldam_margins([16, 1, 81, 0], max_margin=0.5)
    # n^{-1/4} = 1/2, 1, 1/3 (scaled so that the largest is 0.5); no samples → 0
    torch.testing.assert_close(margins, torch.tensor([0.25, 0.5, 0.5 / 3, 0.0]))


def test_zero_margin_is_scaled_cross_entropy() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(6, 4, generator=gen), torch.randint(0, 4, (6,), generator=gen)
    zero = torch.zeros(4)
    torch.testing.assert_close(ldam_loss(logits, targets, zero, scale=1.0), F.cross_entropy(logits, targets))
    torch.testing.assert_close(ldam_loss(logits, targets, zero, scale=3.0), F.cross_entropy(3 * logits, targets))


def test_hand_computed_case() -> None:
    # two classes, cosines (0.5, 0.5), target 0 with margin 0.25, s = 2: logits (2·0.25, 2·0.5) = (0.5, 1)
    logits, targets, margins = torch.tensor([[0.5, 0.5]]), torch.tensor([0]), torch.tensor([0.25, 0.5])
    expected = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(1.0)))
    assert ldam_loss(logits, targets, margins, scale=2.0).item() == pytest.approx(expected, rel=1e-6)


def test_matches_float64_loops_with_and_without_drw_weights() -> None:
    gen = torch.Generator().manual_seed(1)
    counts = [50, 10, 3, 1]
    logits = torch.rand(7, 4, generator=gen) * 2 - 1
    targets = [0, 1, 2, 3, 0, 0, 2]
    module = LDAMLoss(counts, max_margin=0.5, scale=30.0)
    margins = module.margins.tolist()
    assert module(logits, torch.tensor(targets)).item() == pytest.approx(
        _reference(logits, targets, margins, 30.0), rel=1e-5
    )
    weight = torch.tensor([0.2, 0.7, 1.3, 1.8])
    assert module(logits, torch.tensor(targets), weight=weight).item() == pytest.approx(
        _reference(logits, targets, margins, 30.0, weight), rel=1e-5
    )


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        ldam_margins([0, 0])
    with pytest.raises(ValueError):
        LDAMLoss([3, 1], scale=0.0)
    with pytest.raises(ValueError):
        ldam_loss(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2))
