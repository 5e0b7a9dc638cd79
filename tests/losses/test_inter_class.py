"""Tests for the supervised inter-class contrastive loss (paper 002, eq. 2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.losses.inter_class import InterClassContrastiveLoss, inter_class_contrastive_loss


def _reference(z1: torch.Tensor, z2: torch.Tensor, labels: list[int], tau: float, positives: str) -> float:
    """Float64 loops following the docstring's definition term by term."""
    a, b = z1.double(), z2.double()
    n = len(labels)

    def s(i: int, j: int) -> float:
        return float(a[i] @ b[j] / (a[i].norm() * b[j].norm())) / tau

    per_anchor = []
    for i in range(n):
        negatives = [k for k in range(n) if labels[k] != labels[i]]
        if positives == "same_image":
            pos = [i]
        else:
            pos = [j for j in range(n) if j != i and labels[j] == labels[i]] or [i]
        terms = []
        for p in pos:
            denominator = math.exp(s(i, p)) + sum(math.exp(s(i, k)) for k in negatives)
            terms.append(-math.log(math.exp(s(i, p)) / denominator))
        per_anchor.append(sum(terms) / len(terms))
    return sum(per_anchor) / n


def test_hand_computed_three_class_paper_batch() -> None:
    # one row per class: z1 from T1(x_c), z2 from T2(x'_c) (paper's class-balanced batch, eq. 2)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    tau = 0.5
    r = math.sqrt(2.0)  # cos 45° / tau
    # K(z1_c, z2_c') / tau, by hand:   row 0: 2, √2, -2   row 1: 0, √2, 0   row 2: √2, 2, -√2
    l0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(r) + math.exp(-2)))
    l1 = -math.log(math.exp(r) / (1 + math.exp(r) + 1))
    l2 = -math.log(math.exp(-r) / (math.exp(r) + math.exp(2) + math.exp(-r)))
    expected = (l0 + l1 + l2) / 3
    labels = torch.tensor([0, 1, 2])
    for positives in ("different_images", "same_image"):  # identical on the paper's batch
        out = inter_class_contrastive_loss(z1, z2, labels, temperature=tau, positives=positives)
        assert out.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("positives", ["different_images", "same_image"])
def test_matches_float64_loop_on_general_batch(positives: str) -> None:
    gen = torch.Generator().manual_seed(0)
    labels = [0, 0, 0, 1, 2, 2, 1, 3]  # class sizes 3, 2, 2, 1
    z1 = torch.randn(8, 5, generator=gen)
    z2 = torch.randn(8, 5, generator=gen)
    out = inter_class_contrastive_loss(z1, z2, torch.tensor(labels), 0.2, positives)  # type: ignore[arg-type]
    assert out.item() == pytest.approx(_reference(z1, z2, labels, 0.2, positives), rel=1e-5)


def test_every_sample_its_own_class_is_infonce() -> None:
    gen = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).t() / 0.1
    expected = F.cross_entropy(logits, torch.arange(6))  # eq. 1 of paper 002, cross-view negatives
    out = inter_class_contrastive_loss(z1, z2, torch.arange(6), temperature=0.1)
    torch.testing.assert_close(out, expected)


def test_gradient_isolation_different_images() -> None:
    z1 = torch.randn(4, 3, requires_grad=True)
    z2 = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    per_anchor = inter_class_contrastive_loss(z1, z2, labels, reduction="none")
    per_anchor[0].backward()
    assert z1.grad is not None and z2.grad is not None
    # anchor 0's own second view is neither positive (another image exists) nor negative
    assert torch.all(z2.grad[0] == 0)
    assert z2.grad[1].abs().sum() > 0  # positive: the other image of class 0
    assert z2.grad[2:].abs().sum() > 0  # negatives: class 1
    assert torch.all(z1.grad[1:] == 0)  # other anchors take no part


def test_gradient_isolation_same_image() -> None:
    z1 = torch.randn(4, 3, requires_grad=True)
    z2 = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    per_anchor = inter_class_contrastive_loss(z1, z2, labels, positives="same_image", reduction="none")
    per_anchor[0].backward()
    assert z2.grad is not None
    assert torch.all(z2.grad[1] == 0)  # same-class other image: never a negative, not a positive here
    assert z2.grad[0].abs().sum() > 0


def test_single_class_and_singleton_class_are_finite() -> None:
    z1 = torch.randn(3, 4, requires_grad=True)
    z2 = torch.randn(3, 4, requires_grad=True)
    single = inter_class_contrastive_loss(z1, z2, torch.tensor([2, 2, 2]))
    single.backward()
    assert single.item() == 0.0  # no negatives: each term is log(e^s / e^s)
    assert z1.grad is not None and torch.isfinite(z1.grad).all()
    one = inter_class_contrastive_loss(z1[:1], z2[:1], torch.tensor([0]))
    assert one.item() == 0.0
    # class 1 has one image: its term uses the two views of that image against class 0's rows
    z1d, z2d = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    per_anchor = inter_class_contrastive_loss(z1d, z2d, torch.tensor([0, 0, 1]), reduction="none")
    sims = F.normalize(z1d, dim=1) @ F.normalize(z2d, dim=1).t() / 0.2
    expected = -torch.log_softmax(sims[2], dim=0)[2]  # denominator: itself + both class-0 rows
    torch.testing.assert_close(per_anchor[2], expected)
    assert torch.isfinite(per_anchor).all()


def test_bad_arguments_raise() -> None:
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="temperature"):
        InterClassContrastiveLoss(temperature=0.0)
    with pytest.raises(ValueError, match="positives"):
        InterClassContrastiveLoss(positives="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        inter_class_contrastive_loss(z, torch.randn(3, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        inter_class_contrastive_loss(z, z, torch.tensor([0, 1, 2]))


def test_module_matches_function() -> None:
    z1, z2, labels = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 1, 1, 2, 0])
    module = InterClassContrastiveLoss(temperature=0.3, positives="same_image")
    expected = inter_class_contrastive_loss(z1, z2, labels, temperature=0.3, positives="same_image")
    torch.testing.assert_close(module(z1, z2, labels), expected)
