"""Tests for CCT's consistency loss: squared error between softmax outputs and fixed target probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from marsvision.losses.softmax_mse import SoftmaxMSELoss, softmax_mse_loss


def test_matching_probabilities_cost_nothing_and_the_target_gets_no_gradient() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = logits.detach().softmax(dim=1).requires_grad_()
    loss = softmax_mse_loss(logits, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    (loss + (logits * 0).sum()).backward()
    assert target.grad is None


def test_hand_computed_case() -> None:
    # two classes at two pixels: logits (0, ln 3) → p = (1/4, 3/4); (0, 0) → (1/2, 1/2); targets one-hot class 0
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(3.0), 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
    # pixel 1: ((1/4 − 1)² + (3/4)²)/2 = 9/16; pixel 2: ((1/2)² + (1/2)²)/2 = 1/4
    assert softmax_mse_loss(logits, target).item() == pytest.approx((9 / 16 + 1 / 4) / 2)
    valid = torch.tensor([[[True, False]]])
    assert SoftmaxMSELoss()(logits, target, valid).item() == pytest.approx(9 / 16)


def test_equals_torch_mse_on_probabilities_and_float64_loops() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, other = torch.randn(2, 4, 3, 5, generator=gen), torch.randn(2, 4, 3, 5, generator=gen)
    target = other.softmax(dim=1)
    expected = torch.nn.functional.mse_loss(logits.softmax(dim=1), target)  # CCT's softmax_mse_loss
    torch.testing.assert_close(softmax_mse_loss(logits, target), expected)
    valid = torch.rand(2, 3, 5, generator=gen) > 0.4
    p, q = logits.double().softmax(dim=1), target.double()
    total, count = 0.0, 0
    for i in range(2):
        for y in range(3):
            for x in range(5):
                if valid[i, y, x]:
                    total += float(((p[i, :, y, x] - q[i, :, y, x]) ** 2).mean())
                    count += 1
    assert softmax_mse_loss(logits, target, valid).item() == pytest.approx(total / count, rel=1e-6)


def test_nothing_valid_is_zero_and_bad_shapes_raise() -> None:
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    none = softmax_mse_loss(logits, logits.detach().softmax(1) * 0, torch.zeros(1, 2, 2, dtype=torch.bool))
    none.backward()
    assert none.item() == 0.0 and logits.grad is not None
    with pytest.raises(ValueError):
        softmax_mse_loss(torch.randn(1, 2, 2, 2), torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError):
        softmax_mse_loss(torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2), torch.ones(1, 3, 3, dtype=torch.bool))
