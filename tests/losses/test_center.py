"""Tests for the center loss baseline (Wen et al. 2016)."""

from __future__ import annotations

import pytest
import torch

from marsvision.losses.center import CenterLoss, center_loss, updated_centers


def _reference_loss(features: torch.Tensor, targets: list[int], centers: torch.Tensor) -> float:
    """Float64 loop: ½ Σ_i ‖x_i − c_{y_i}‖², divided by N."""
    total = 0.0
    for x, y in zip(features.double(), targets, strict=True):
        total += 0.5 * float(((x - centers.double()[y]) ** 2).sum())
    return total / len(targets)


def _reference_update(features: torch.Tensor, targets: list[int], centers: torch.Tensor, alpha: float) -> torch.Tensor:
    """Float64 loops over classes: Δc_j = Σ_{y_i = j} (c_j − x_i) / (1 + n_j), c_j ← c_j − α Δc_j."""
    new = centers.double().clone()
    for j in range(len(centers)):
        members = [i for i, y in enumerate(targets) if y == j]
        delta = sum((centers.double()[j] - features.double()[i] for i in members), torch.zeros(centers.shape[1]))
        new[j] = centers.double()[j] - alpha * delta / (1 + len(members))
    return new


def test_features_on_their_centers_cost_nothing_and_leave_the_centers() -> None:
    centers = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]])
    targets = torch.tensor([0, 1, 1])
    features = centers[targets].clone().requires_grad_()
    assert center_loss(features, targets, centers).item() == 0.0
    sums = torch.zeros_like(centers).index_add_(0, targets, features.detach())
    counts = torch.bincount(targets, minlength=3)
    torch.testing.assert_close(updated_centers(sums, counts, centers, alpha=0.5), centers)


def test_hand_computed_loss_gradient_and_update() -> None:
    centers = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    features = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.0, 3.0]], requires_grad=True)
    targets = torch.tensor([0, 0, 1])
    # ½(1 + 9 + (0 + 4)) / 3
    loss = center_loss(features, targets, centers)
    assert loss.item() == pytest.approx(7.0 / 3.0)
    loss.backward()
    # ∂L/∂x_i = (x_i − c_{y_i}) / N; the centers get no gradient
    torch.testing.assert_close(features.grad, torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]) / 3)
    module = CenterLoss(num_classes=2, feature_dim=2, alpha=0.5)
    module.centers.copy_(centers)
    module.update(features, targets)
    # class 0: Δc = ((0 − 1) + (0 − 3), 0) / 3 = (−4/3, 0) → c = (2/3, 0); class 1: Δc = (0, −2)/2 → c = (1, 1.5)
    torch.testing.assert_close(module.centers, torch.tensor([[2.0 / 3.0, 0.0], [1.0, 1.5]]))


def test_matches_float64_loops_and_keeps_absent_classes() -> None:
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 5, generator=gen)
    features = torch.randn(7, 5, generator=gen)
    targets = [0, 2, 2, 1, 0, 0, 2]  # class 3 is absent
    module = CenterLoss(num_classes=4, feature_dim=5, alpha=0.3)
    module.centers.copy_(centers)
    loss = module(features, torch.tensor(targets))
    assert loss.item() == pytest.approx(_reference_loss(features, targets, centers), rel=1e-6)
    module.update(features, torch.tensor(targets))
    expected = _reference_update(features, targets, centers, alpha=0.3)
    torch.testing.assert_close(module.centers.double(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(module.centers[3], centers[3])
    assert "centers" in module.state_dict()


def test_empty_batch_is_zero_and_bad_arguments_raise() -> None:
    features = torch.zeros(0, 3, requires_grad=True)
    assert center_loss(features, torch.zeros(0, dtype=torch.long), torch.zeros(2, 3)).item() == 0.0
    with pytest.raises(ValueError):
        CenterLoss(num_classes=0, feature_dim=3)
    with pytest.raises(ValueError):
        CenterLoss(num_classes=2, feature_dim=3, alpha=1.5)
    with pytest.raises(ValueError):
        center_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), torch.zeros(2, 4))
