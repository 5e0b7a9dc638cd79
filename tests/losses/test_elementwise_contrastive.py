"""Tests for the element-wise inter-class contrastive loss (paper 002, eq. 7)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.elementwise_contrastive import (
    ElementwiseContrastiveLoss,
    downsample_labels,
    elementwise_contrastive_loss,
)


def _reference_loss(
    features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor, valid: torch.Tensor, tau: float
) -> float:
    """Float64 loops over locations, labels given at the feature resolution."""
    f = features.double()
    m = prototypes.double()
    terms = []
    n, _, h, w = f.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                y = int(labels[b, i, j])
                if y == IGNORE_INDEX or not bool(valid[y]):
                    continue
                v = f[b, :, i, j]
                sims = {c: float(v @ m[c] / (v.norm() * m[c].norm())) for c in range(m.shape[0]) if valid[c]}
                denominator = sum(math.exp(s / tau) for s in sims.values())
                terms.append(-math.log(math.exp(sims[y] / tau) / denominator))
    return sum(terms) / len(terms)


@pytest.mark.parametrize(("big", "small"), [((64, 64), (16, 16)), ((10, 7), (4, 3)), ((9, 12), (3, 4))])
def test_downsample_labels_is_torch_nearest(big: tuple[int, int], small: tuple[int, int]) -> None:
    labels = torch.randint(0, 5, (2, *big))
    labels[0, 0, :] = IGNORE_INDEX
    expected = F.interpolate(labels[:, None].float(), size=small, mode="nearest")[:, 0].long()
    out = downsample_labels(labels, small)
    assert out.dtype == labels.dtype
    assert torch.equal(out, expected)


def test_downsample_labels_keeps_top_left_of_each_block() -> None:
    labels = torch.arange(16).view(1, 4, 4)
    assert downsample_labels(labels, (2, 2)).tolist() == [[[0, 2], [8, 10]]]


@pytest.mark.parametrize(("num_valid", "tau"), [(4, 0.07), (3, 0.07), (4, 1.0)])
def test_features_equal_to_their_prototype_closed_form(num_valid: int, tau: float) -> None:
    # float64: at tau = 0.07 the value (~1e-6) is below float32 resolution around log(1 + x)
    prototypes = torch.eye(4, 6, dtype=torch.float64)  # orthonormal: K(m_a, m_b) = 0 for a != b
    valid = torch.arange(4) < num_valid
    labels = torch.tensor([[[0, 1], [2, IGNORE_INDEX]], [[num_valid - 1, 3], [0, 0]]])  # (2, 2, 2)
    features = torch.zeros(2, 6, 2, 2, dtype=torch.float64)
    for b, i, j in torch.cartesian_prod(torch.arange(2), torch.arange(2), torch.arange(2)).tolist():
        y = int(labels[b, i, j])
        if y != IGNORE_INDEX:
            features[b, :, i, j] = 3.0 * prototypes[y]  # cosine is scale free
    loss = elementwise_contrastive_loss(features, labels, prototypes, valid, temperature=tau)
    # each used location: own similarity 1, the (num_valid - 1) other valid classes 0
    expected = math.log(1.0 + (num_valid - 1) * math.exp(-1.0 / tau))
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_hand_computed_two_locations() -> None:
    # D = 2, prototypes at 0 and 90 degrees; two locations at 0 and 45 degrees, both labeled class 0
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    features = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # location a = (1, 0), b = (1, 1)
    labels = torch.tensor([[[0, 0]]])
    tau = 0.5
    c = 1 / math.sqrt(2)
    loss_a = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0.0)))
    loss_b = -math.log(math.exp(c / tau) / (2 * math.exp(c / tau)))  # = log 2
    out = elementwise_contrastive_loss(features, labels, prototypes, torch.tensor([True, True]), tau)
    assert out.item() == pytest.approx((loss_a + loss_b) / 2, rel=1e-6)


def test_matches_float64_loop_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(3, 5, 4, 6, generator=gen)
    labels_big = torch.randint(0, 4, (3, 16, 24), generator=gen)
    labels_big[1, :8] = IGNORE_INDEX
    labels_big[2] = IGNORE_INDEX  # an image without any labeled pixel
    prototypes = torch.randn(4, 5, generator=gen)
    valid = torch.tensor([True, True, False, True])
    loss = elementwise_contrastive_loss(features, labels_big, prototypes, valid, temperature=0.07)
    small = downsample_labels(labels_big, (4, 6))
    expected = _reference_loss(features, small, prototypes, valid, 0.07)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_no_valid_location_returns_attached_zero() -> None:
    features = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.randint(0, 3, (2, 4, 4))
    # all queues empty
    loss = elementwise_contrastive_loss(features, labels, torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert features.grad is not None
    assert torch.all(features.grad == 0)
    # queues filled but nothing labeled
    unlabeled = torch.randn(2, 3, 4, 4, requires_grad=True)
    all_ignored = torch.full((2, 4, 4), IGNORE_INDEX)
    loss = elementwise_contrastive_loss(unlabeled, all_ignored, torch.randn(3, 3), torch.ones(3, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0
    assert unlabeled.grad is not None
    assert torch.all(unlabeled.grad == 0)


def test_empty_class_and_zero_feature_give_finite_gradients() -> None:
    features = torch.randn(1, 3, 2, 2)
    features[0, :, 0, 0] = 0.0  # a zero-norm embedding
    features.requires_grad_(True)
    labels = torch.tensor([[[0, 1], [2, 1]]])  # class 2's queue is empty: its location must not count
    prototypes = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    valid = torch.tensor([True, True, False])
    loss = elementwise_contrastive_loss(features, labels, prototypes, valid)
    loss.backward()
    assert torch.isfinite(loss)
    assert features.grad is not None
    assert torch.isfinite(features.grad).all()
    assert torch.all(features.grad[0, :, 1, 0] == 0)  # the class-2 location


def test_gradient_reaches_features_not_prototypes() -> None:
    features = torch.randn(2, 4, 3, 3, requires_grad=True)
    prototypes = torch.randn(3, 4, requires_grad=True)
    labels = torch.randint(0, 3, (2, 3, 3))
    loss = elementwise_contrastive_loss(features, labels, prototypes, torch.ones(3, dtype=torch.bool))
    loss.backward()
    assert prototypes.grad is None
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_many_locations_cost_is_linear_in_locations() -> None:
    # 512 x 512 = 262,144 locations: a locations x locations matrix (6.9e10 entries) could not be allocated
    features = torch.randn(1, 4, 512, 512)
    labels = torch.randint(0, 4, (1, 512, 512))
    loss = elementwise_contrastive_loss(features, labels, torch.randn(4, 4), torch.ones(4, dtype=torch.bool))
    assert torch.isfinite(loss)


def test_bad_arguments_raise() -> None:
    features, prototypes, valid = torch.randn(1, 2, 2, 2), torch.randn(3, 2), torch.ones(3, dtype=torch.bool)
    with pytest.raises(ValueError, match="temperature"):
        elementwise_contrastive_loss(features, torch.zeros(1, 2, 2, dtype=torch.long), prototypes, valid, 0.0)
    with pytest.raises(ValueError, match="labels must lie"):
        elementwise_contrastive_loss(features, torch.full((1, 2, 2), 3), prototypes, valid)
    with pytest.raises(ValueError, match="inconsistent"):
        elementwise_contrastive_loss(features, torch.zeros(1, 2, 2, dtype=torch.long), torch.randn(3, 5), valid)
    with pytest.raises(ValueError):
        ElementwiseContrastiveLoss(num_classes=3, dim=2, temperature=-1.0)


def test_module_uses_bank_before_push_then_pushes() -> None:
    torch.manual_seed(0)
    module = ElementwiseContrastiveLoss(num_classes=3, dim=4, queue_len=8)
    features = torch.randn(2, 4, 4, 4, requires_grad=True)
    labels = torch.randint(0, 3, (2, 16, 16))
    first = module(features, labels)
    assert first.item() == 0.0  # the bank was empty before this batch
    assert module.bank.valid().all()
    prototypes, valid = module.bank.prototypes().clone(), module.bank.valid().clone()
    second = module(features, labels, update_bank=False)
    expected = elementwise_contrastive_loss(features, labels, prototypes, valid, temperature=0.07)
    torch.testing.assert_close(second, expected)
    torch.testing.assert_close(module.bank.prototypes(), prototypes)  # no push with update_bank=False
    second.backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert "bank.queue" in module.state_dict()
