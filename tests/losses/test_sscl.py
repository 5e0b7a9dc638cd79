"""Tests for SsCL's co-calibration and neighbour contrastive loss (Zhang et al., TMM 2022)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.losses.sscl import (
    NeighbourContrastiveLoss,
    co_calibrate,
    neighbour_contrastive_loss,
    neighbour_positives,
    similarity_distribution,
)

E = math.e


def _calibrated_reference(probs: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, labels: list[int], tau: float):
    """Float64 loops: a_j over the labeled memory, s_c summed per label, p̂ ∝ p_c s_c."""
    k = F.normalize(keys.double(), dim=1)
    m = F.normalize(memory.double(), dim=1)
    rows = []
    for i in range(len(k)):
        scores = [math.exp(float(k[i] @ m[j]) / tau) for j in range(len(m))]
        s = [sum(scores[j] for j in range(len(m)) if labels[j] == c) / sum(scores) for c in range(probs.shape[1])]
        product = [float(probs[i, c]) * s[c] for c in range(probs.shape[1])]
        rows.append([x / sum(product) for x in product])
    return torch.tensor(rows, dtype=torch.float64)


def _contrastive_reference(queries: torch.Tensor, memory: torch.Tensor, positives: list[list[int]], tau: float):
    """Float64 loops over queries: the mean −log softmax over each query's positive entries."""
    q = F.normalize(queries.double(), dim=1)
    m = F.normalize(memory.double(), dim=1)
    total = 0.0
    for i, chosen in enumerate(positives):
        denominator = sum(math.exp(float(q[i] @ m[j]) / tau) for j in range(len(m)))
        total += -sum(math.log(math.exp(float(q[i] @ m[j]) / tau) / denominator) for j in chosen) / len(chosen)
    return total / len(positives)


def test_co_calibration_hand_computed():
    # key (1, 0) against labeled keys (1, 0) of class 0 and (0, 1) of class 1, τ = 1: s = (e, 1) / (e + 1)
    keys = torch.tensor([[1.0, 0.0]])
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    similarity = similarity_distribution(keys, memory, torch.eye(2), temperature=1.0)
    torch.testing.assert_close(similarity, torch.tensor([[E / (E + 1), 1 / (E + 1)]]))
    # p = (0.2, 0.8): p̂ ∝ (0.2 e, 0.8), so p̂_0 = e / (e + 4)
    calibrated = co_calibrate(torch.tensor([[0.2, 0.8]]), similarity)
    torch.testing.assert_close(calibrated, torch.tensor([[E / (E + 4), 4 / (E + 4)]]))


def test_co_calibration_matches_float64_reference():
    gen = torch.Generator().manual_seed(0)
    keys, memory = torch.randn(4, 5, generator=gen), torch.randn(7, 5, generator=gen)
    labels = [0, 2, 1, 2, 0, 2, 2]  # class 2 holds more entries, so more of s
    probs = torch.randn(4, 3, generator=gen).softmax(dim=1)
    onehot = F.one_hot(torch.tensor(labels), 3).float()
    out = co_calibrate(probs, similarity_distribution(keys, memory, onehot, temperature=0.2))
    torch.testing.assert_close(
        out.double(), _calibrated_reference(probs, keys, memory, labels, 0.2), rtol=1e-5, atol=1e-6
    )


def test_co_calibration_limits():
    gen = torch.Generator().manual_seed(1)
    probs = torch.randn(3, 4, generator=gen).softmax(dim=1)
    keys = torch.randn(3, 6, generator=gen)
    # nothing labeled in the memory: s is uniform and the prediction passes unchanged
    empty = similarity_distribution(keys, torch.zeros(0, 6), torch.zeros(0, 4), temperature=0.2)
    torch.testing.assert_close(empty, torch.full((3, 4), 0.25))
    torch.testing.assert_close(co_calibrate(probs, empty), probs)
    # τ → 0: s is the one-hot class of the nearest labeled key, and p̂ that class with certainty
    memory = torch.eye(6)[:4]  # class c's key is the c-th axis
    nearest = F.normalize(keys, dim=1)[:, :4].argmax(dim=1)
    sharp = similarity_distribution(keys, memory, torch.eye(4), temperature=1e-4)
    torch.testing.assert_close(sharp, F.one_hot(nearest, 4).float())
    torch.testing.assert_close(co_calibrate(probs, sharp), F.one_hot(nearest, 4).float())


def test_contrastive_hand_computed():
    # q = (1, 0) against (1, 0), (0, 1), (−1, 0), τ = 1: Z = e + 1 + 1/e
    queries = torch.tensor([[1.0, 0.0]])
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    z = E + 1 + 1 / E
    own_only = neighbour_contrastive_loss(queries, memory, torch.tensor([[True, False, False]]), temperature=1.0)
    assert own_only.item() == pytest.approx(math.log(z) - 1, rel=1e-6)
    # the orthogonal entry a positive too: −(log(e/Z) + log(1/Z)) / 2 = log Z − 1/2
    two = NeighbourContrastiveLoss(temperature=1.0)(queries, memory, torch.tensor([[True, True, False]]))
    assert two.item() == pytest.approx(math.log(z) - 0.5, rel=1e-6)


def test_contrastive_matches_float64_reference_with_chosen_neighbours():
    gen = torch.Generator().manual_seed(2)
    queries, memory = torch.randn(3, 4, generator=gen), torch.randn(8, 4, generator=gen)
    predictions = torch.randn(3, 5, generator=gen).softmax(dim=1)
    distributions = F.one_hot(torch.tensor([0, 1, 2, 3, 4, 1, 2, 0]), 5).float()
    distributions[:3] = predictions  # the queries' own entries carry their predictions
    confident = torch.tensor([True, False, True])
    positives = neighbour_positives(predictions, distributions, torch.arange(3), 2, confident)
    chosen = []  # own key, plus the two largest agreements among the other entries where confident
    for i in range(3):
        agreement = [float(predictions[i].double() @ distributions[j].double()) for j in range(8)]
        others = sorted((j for j in range(8) if j != i), key=lambda j: -agreement[j])
        chosen.append([i, *(others[:2] if confident[i] else [])])
    assert [sorted(torch.nonzero(row).flatten().tolist()) for row in positives] == [sorted(c) for c in chosen]
    out = neighbour_contrastive_loss(queries, memory, positives, temperature=0.2)
    assert out.item() == pytest.approx(_contrastive_reference(queries, memory, chosen, 0.2), rel=1e-5)


def test_contrastive_without_neighbours_is_infonce_as_cross_entropy():
    # positives = own key only: MoCo's InfoNCE, i.e. the cross-entropy of q·mᵀ/τ against the own index
    gen = torch.Generator().manual_seed(3)
    queries, memory = torch.randn(4, 6, generator=gen), torch.randn(10, 6, generator=gen)
    own = torch.tensor([0, 1, 2, 3])
    positives = neighbour_positives(torch.rand(4, 3), torch.rand(10, 3), own, 0, torch.ones(4, dtype=torch.bool))
    logits = F.normalize(queries, dim=1) @ F.normalize(memory, dim=1).t() / 0.2
    expected = F.cross_entropy(logits, own)
    torch.testing.assert_close(neighbour_contrastive_loss(queries, memory, positives, temperature=0.2), expected)


def test_aligned_query_and_orthogonal_negatives_at_low_temperature_cost_nothing():
    memory = torch.eye(3)
    out = neighbour_contrastive_loss(torch.tensor([[2.0, 0.0, 0.0]]), memory, torch.eye(3)[:1].bool(), 0.01)
    assert out.item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_reaches_queries_only():
    queries = torch.randn(2, 3, requires_grad=True)
    memory = torch.randn(4, 3, requires_grad=True)
    positives = torch.tensor([[True, False, False, True], [False, True, False, False]])
    neighbour_contrastive_loss(queries, memory.detach(), positives, 0.5).backward()
    assert queries.grad is not None and torch.isfinite(queries.grad).all() and memory.grad is None


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        NeighbourContrastiveLoss(temperature=0.0)
    with pytest.raises(ValueError, match="at least one positive"):
        neighbour_contrastive_loss(torch.randn(2, 3), torch.randn(4, 3), torch.zeros(2, 4, dtype=torch.bool), 0.2)
    with pytest.raises(ValueError):
        similarity_distribution(torch.randn(2, 3), torch.randn(4, 3), torch.eye(3), 0.2)  # 4 keys, 3 distributions
    with pytest.raises(ValueError):
        co_calibrate(torch.rand(2, 3), torch.rand(2, 4))
    with pytest.raises(ValueError):
        neighbour_positives(
            torch.rand(2, 3), torch.rand(4, 3), torch.tensor([0, 4]), 1, torch.ones(2, dtype=torch.bool)
        )
