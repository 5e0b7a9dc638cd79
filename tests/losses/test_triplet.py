"""Tests for the triplet loss baseline (Schroff et al. 2015), both triplet selections."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from marsvision.losses.triplet import TripletLoss, triplet_loss


def _reference(embeddings: torch.Tensor, labels: list[int], margin: float, mining: str) -> float:
    """Float64 loops over anchors, positives and negatives, on L2-normalised embeddings."""
    z = torch.nn.functional.normalize(embeddings.double(), dim=1)

    def d(i: int, j: int) -> float:
        return float(((z[i] - z[j]) ** 2).sum())

    n = len(labels)
    terms = []
    for a, p in itertools.permutations(range(n), 2):
        if labels[a] != labels[p]:
            continue
        negatives = [k for k in range(n) if labels[k] != labels[a]]
        if not negatives:
            continue
        if mining == "batch-all":
            terms += [max(d(a, p) - d(a, k) + margin, 0.0) for k in negatives]
            continue
        beyond = [d(a, k) for k in negatives if d(a, k) > d(a, p)]
        chosen = min(beyond) if beyond else max(d(a, k) for k in negatives)
        terms.append(max(d(a, p) - chosen + margin, 0.0))
    return sum(terms) / max(len(terms), 1)


@pytest.mark.parametrize("mining", ["semi-hard", "batch-all"])
def test_analytic_values(mining: str) -> None:
    # classes on orthogonal axes, each class at one point: d_ap = 0, d_an = 2 > margin → nothing to learn
    separated = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert triplet_loss(separated, labels, margin=0.2, mining=mining).item() == 0.0
    # every embedding the same point: every hinge is the margin
    collapsed = torch.ones(4, 3)
    assert triplet_loss(collapsed, labels, margin=0.2, mining=mining).item() == pytest.approx(0.2)


def test_hand_computed_case() -> None:
    # unit vectors at angles 0°, 60° (class 0) and 90°, 180° (class 1): squared distances 2 − 2 cos Δθ
    angles = [0.0, 60.0, 90.0, 180.0]
    embeddings = torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in angles])
    labels = torch.tensor([0, 0, 1, 1])
    # d(0,1) = 1, d(0,2) = 2, d(0,3) = 4, d(1,2) = 2 − √3, d(1,3) = 3, d(2,3) = 2
    r3 = math.sqrt(3.0)
    # semi-hard, margin 0.5, pairs (a, p): nearest negative farther than the positive, else the farthest one
    #   (0,1): d_ap 1, negatives 2, 4 → 2: hinge 0 ; (1,0): d_ap 1, negatives 2 − √3, 3 → 3: hinge 0
    #   (2,3): d_ap 2, negatives 2, 2 − √3 → none beyond, farthest 2: hinge 0.5
    #   (3,2): d_ap 2, negatives 4, 3 → 3: hinge 0
    assert triplet_loss(embeddings, labels, margin=0.5).item() == pytest.approx(0.5 / 4, rel=1e-5)
    # batch-all, margin 0.5: the eight triplets' hinges
    #   a=0: 1 − 2 + .5 = 0, 1 − 4 + .5 = 0; a=1: 1 − (2 − √3) + .5 = √3 − .5, 1 − 3 + .5 = 0
    #   a=2: 2 − 2 + .5 = .5, 2 − (2 − √3) + .5 = √3 + .5; a=3: 2 − 4 + .5 = 0, 2 − 3 + .5 = 0
    expected = ((r3 - 0.5) + 0.5 + (r3 + 0.5)) / 8
    assert TripletLoss(margin=0.5, mining="batch-all")(embeddings, labels).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("mining", ["semi-hard", "batch-all"])
def test_matches_float64_loops(mining: str) -> None:
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(9, 4, generator=gen, requires_grad=True)
    labels = [0, 1, 2, 0, 1, 2, 0, 1, 3]  # class 3 has no positive
    loss = triplet_loss(embeddings, torch.tensor(labels), margin=0.3, mining=mining)
    assert loss.item() == pytest.approx(_reference(embeddings.detach(), labels, 0.3, mining), rel=1e-5)
    loss.backward()
    assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()


def test_no_pair_is_zero_and_bad_arguments_raise() -> None:
    embeddings = torch.randn(3, 2, requires_grad=True)
    assert triplet_loss(embeddings, torch.tensor([0, 1, 2])).item() == 0.0
    assert triplet_loss(embeddings, torch.tensor([0, 0, 0])).item() == 0.0  # no negative at all
    with pytest.raises(ValueError):
        TripletLoss(margin=-0.1)
    with pytest.raises(ValueError):
        TripletLoss(mining="hardest")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        triplet_loss(torch.randn(3, 2), torch.tensor([0, 1]))
