"""Tests for the ReCo-style regional contrast (Method B-seg Table 8 baseline)."""

from __future__ import annotations

import math

import pytest
import torch

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.regional_contrast import (
    RegionalContrastLoss,
    class_means,
    contrast_queries,
    regional_contrast_loss,
    sample_regional_contrast,
)


def _reference(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, tau: float) -> float:
    """Float64 loops over queries and keys."""

    def cosine(u: torch.Tensor, v: torch.Tensor) -> float:
        return float(u @ v / (u.norm() * v.norm()))

    terms = []
    for i in range(len(queries)):
        q = queries[i].double()
        positive = math.exp(cosine(q, positives[i].double()) / tau)
        others = sum(math.exp(cosine(q, k.double()) / tau) for k in negatives[i])
        terms.append(-math.log(positive / (positive + others)))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("tau", [0.5, 0.1])
def test_orthonormal_classes_closed_form(tau: float) -> None:
    # every pixel of class c equals e_c: K(q, m_c) = 1 and every negative key is orthogonal to q
    labels = torch.tensor([0, 0, 1, 2, 2, 2, IGNORE_INDEX, 1])
    # float64: at tau = 0.1 the value (~3e-4) is near float32 resolution around log(1 + x)
    features = torch.eye(4, 5, dtype=torch.float64)[labels.clamp(max=3)] * 3.0  # scale does not matter (cosine)
    loss = regional_contrast_loss(features, labels, num_classes=4, temperature=tau, num_queries=5, num_negatives=7)
    expected = math.log(1 + 7 * math.exp(-1 / tau))
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_contrast_queries_matches_float64_loops() -> None:
    torch.manual_seed(0)
    queries, positives, negatives = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 5, 8)
    loss = contrast_queries(queries, positives, negatives, temperature=0.5)
    assert loss.item() == pytest.approx(_reference(queries, positives, negatives, 0.5), rel=1e-5)


def test_full_loss_is_the_core_on_the_sampled_pixels() -> None:
    torch.manual_seed(1)
    features = torch.randn(60, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (60,))
    labels[::7] = IGNORE_INDEX
    kwargs = {"num_classes": 3, "temperature": 0.5, "num_queries": 4, "num_negatives": 6}
    loss = regional_contrast_loss(features, labels, generator=torch.Generator().manual_seed(5), **kwargs)
    query, query_class, negative = sample_regional_contrast(
        features, labels, generator=torch.Generator().manual_seed(5), **kwargs
    )
    f = features.detach()
    means = torch.stack([(f[labels == c] / f[labels == c].norm(dim=1, keepdim=True)).mean(0) for c in range(3)])
    assert loss.item() == pytest.approx(_reference(f[query], means[query_class], f[negative], 0.5), rel=1e-9)
    loss.backward()
    touched = features.grad.abs().sum(1) > 0
    assert set(torch.nonzero(touched).flatten().tolist()) == set(query.tolist()), "gradient reaches queries only"


def test_sampling_rules() -> None:
    labels = torch.tensor([0] * 10 + [1] * 10 + [2] * 3 + [IGNORE_INDEX] * 4)
    hard = torch.zeros(len(labels), dtype=torch.bool)
    hard[[2, 3, 15]] = True  # class 0 and 1 have hard pixels, class 2 has none
    features = torch.randn(len(labels), 4)
    query, query_class, negative = sample_regional_contrast(
        features, labels, hard, num_classes=4, num_queries=20, num_negatives=9, generator=torch.Generator()
    )
    assert query.shape == (60,) and negative.shape == (60, 9)
    assert torch.equal(labels[query], query_class), "queries belong to their class"
    assert set(query[query_class == 0].tolist()) <= {2, 3} and set(query[query_class == 1].tolist()) == {15}
    assert set(query[query_class == 2].tolist()) <= {20, 21, 22}, "no hard pixel: any pixel of the class"
    negative_labels = labels[negative]
    assert (negative_labels != query_class[:, None]).all() and (negative_labels != IGNORE_INDEX).all()


def test_missing_classes_give_zero_without_nan() -> None:
    features = torch.randn(12, 4, requires_grad=True)
    one_class = torch.tensor([2] * 6 + [IGNORE_INDEX] * 6)
    loss = regional_contrast_loss(features, one_class, num_classes=4)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(features.grad).all()
    # two of four classes present: finite and positive
    two = torch.tensor([0] * 6 + [3] * 6)
    assert 0 < regional_contrast_loss(features, two, num_classes=4, num_queries=3, num_negatives=3).item() < math.inf


def test_class_means_are_unit_and_zero_for_absent_classes() -> None:
    means = class_means(torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]]), torch.tensor([0, 0, 1]), num_classes=3)
    assert torch.allclose(means[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    assert torch.allclose(means[1], torch.tensor([1.0, 1.0]) / math.sqrt(2)) and means[2].abs().sum() == 0


def test_module_downsamples_labels_and_validates() -> None:
    torch.manual_seed(2)
    features = torch.randn(2, 8, 4, 4, requires_grad=True)
    labels = torch.randint(0, 3, (2, 16, 16))
    loss = RegionalContrastLoss(3, num_queries=8, num_negatives=8)(features, labels, generator=torch.Generator())
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert features.grad is not None
    with pytest.raises(ValueError, match="temperature"):
        RegionalContrastLoss(3, temperature=0.0)
    with pytest.raises(ValueError, match="positive"):
        RegionalContrastLoss(3, num_queries=0)
    with pytest.raises(ValueError, match="labels must lie"):
        regional_contrast_loss(torch.randn(3, 2), torch.tensor([0, 5, 1]), num_classes=3)
