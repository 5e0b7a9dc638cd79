"""DenseCL's dense loss against a float64 loop over the equation, and its correspondence by feature similarity."""

from __future__ import annotations

import math

import pytest
import torch

from marsvision.losses.dense_contrastive import DenseContrastiveLoss, dense_contrastive_loss, matched_locations


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(c * c for c in vector))
    return [c / norm for c in vector]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _locations(maps: torch.Tensor) -> list[list[list[float]]]:
    """(N, C, S, S) → [image][location] = the C-vector, locations in row-major order."""
    return maps.double().flatten(2).transpose(1, 2).tolist()


def _reference_direction(anchors, keys, features_a, features_k, temperature: float) -> float:
    """mean over images and locations of ℓ, written out from the module docstring with Python floats."""
    total, count = 0.0, 0
    for n in range(len(anchors)):
        for i, anchor in enumerate(anchors[n]):
            similarity = [_dot(_unit(features_a[n][i]), _unit(f)) for f in features_k[n]]
            match = similarity.index(max(similarity))
            positive = math.exp(_dot(_unit(anchor), _unit(keys[n][match])) / temperature)
            negatives = 0.0
            for k in range(len(keys)):
                if k != n:
                    pooled = [sum(column) / len(keys[k]) for column in zip(*keys[k], strict=True)]
                    negatives += math.exp(_dot(_unit(anchor), _unit(pooled)) / temperature)
            total += -math.log(positive / (positive + negatives))
            count += 1
    return total / count


def test_the_loss_is_the_equation_in_float64():
    generator = torch.Generator().manual_seed(0)
    dense1, dense2 = torch.randn(2, 3, 4, 2, 2, generator=generator)  # N 3, D 4, S 2
    features1, features2 = torch.randn(2, 3, 5, 2, 2, generator=generator)  # C 5
    r1, r2, f1, f2 = (_locations(x) for x in (dense1, dense2, features1, features2))
    expected = (_reference_direction(r1, r2, f1, f2, 0.3) + _reference_direction(r2, r1, f2, f1, 0.3)) / 2

    loss = dense_contrastive_loss(dense1.double(), dense2.double(), features1.double(), features2.double(), 0.3)

    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert DenseContrastiveLoss(0.3)(dense1, dense2, features1, features2).item() == pytest.approx(expected, rel=1e-5)


def test_aligned_locations_against_orthogonal_images_by_hand():
    """Every location of image n is e_n in both views: ℓ = −log(e^{1/τ} / (e^{1/τ} + (N − 1) e⁰))."""
    n, temperature = 3, 0.5
    dense = torch.eye(n).reshape(n, n, 1, 1).expand(n, n, 2, 2)  # (N, D = N, S, S): image n is e_n everywhere
    features = torch.randn(n, 5, 2, 2, generator=torch.Generator().manual_seed(3))
    loss = dense_contrastive_loss(dense.double(), dense.double(), features, features, temperature)
    assert loss.item() == pytest.approx(math.log(1 + (n - 1) * math.exp(-1 / temperature)), rel=1e-12)


def test_each_location_is_matched_to_its_most_similar_one_in_the_other_view():
    generator = torch.Generator().manual_seed(1)
    features1 = torch.randn(2, 6, 3, 3, generator=generator)
    order = torch.randperm(9, generator=generator)
    features2 = (2.0 * features1.flatten(2)[:, :, order]).reshape(2, 6, 3, 3)  # the locations shuffled and scaled

    match = matched_locations(features1, features2)

    assert torch.equal(match, order.argsort().expand(2, -1))  # view 2's location holding view 1's i


def test_the_matching_tells_apart_cosines_that_bfloat16_would_round_together():
    """cos = 0.9995 against 1.0: equal in bf16 (8 bits), where argmax would take the first location."""
    features1 = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 4, 1, 1).expand(2, 4, 1, 2)
    near, exact = [1.0, 0.03125, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]
    features2 = torch.tensor([near, exact]).T.reshape(1, 4, 1, 2).expand(2, 4, 1, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        match = matched_locations(features1.bfloat16(), features2.bfloat16())
    assert match.tolist() == [[1, 1], [1, 1]]


def test_no_gradient_flows_through_the_matching():
    generator = torch.Generator().manual_seed(2)
    dense = torch.randn(2, 3, 4, 2, 2, generator=generator).requires_grad_()
    features = torch.randn(2, 3, 5, 2, 2, generator=generator).requires_grad_()
    dense_contrastive_loss(dense[0], dense[1], features[0], features[1]).backward()
    assert features.grad is None
    assert dense.grad is not None and bool(dense.grad.abs().sum() > 0)


@pytest.mark.parametrize(
    ("shapes", "temperature", "message"),
    [
        (((1, 4, 2, 2), (1, 5, 2, 2)), 0.2, "at least two"),
        (((3, 4, 2, 2), (3, 5, 2, 2)), 0.0, "temperature"),
        (((3, 4, 2, 2), (3, 5, 3, 3)), 0.2, "differ in N or S"),
    ],
)
def test_bad_inputs_are_refused(shapes, temperature: float, message: str):
    dense, features = (torch.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError, match=message):
        dense_contrastive_loss(dense, dense, features, features, temperature)
