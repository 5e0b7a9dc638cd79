"""Tests for the unsupervised similarity loss (paper 002, eq. 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from marsvision.losses.similarity import SimilarityLoss, similarity_loss


def test_analytic_values() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    assert similarity_loss(a, 5.0 * a).item() == pytest.approx(-1.0)  # aligned views, scale free
    assert similarity_loss(a, -a).item() == pytest.approx(1.0)  # opposite views
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # cosines 0, 0, 1/√2
    assert similarity_loss(a, b).item() == pytest.approx(-(1 / math.sqrt(2)) / 3)


def test_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(7, 4)), rng.normal(size=(7, 4))
    cos = (z1 * z2).sum(1) / (np.linalg.norm(z1, axis=1) * np.linalg.norm(z2, axis=1))
    out = SimilarityLoss()(torch.from_numpy(z1), torch.from_numpy(z2))
    assert out.item() == pytest.approx(-cos.mean(), rel=1e-12)


def test_gradient_and_bad_shapes() -> None:
    z1 = torch.randn(3, 4, requires_grad=True)
    similarity_loss(z1, torch.randn(3, 4)).backward()
    assert z1.grad is not None and torch.isfinite(z1.grad).all()
    with pytest.raises(ValueError):
        similarity_loss(torch.randn(3, 4), torch.randn(2, 4))
