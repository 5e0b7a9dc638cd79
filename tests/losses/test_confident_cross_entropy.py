"""The confident pseudo-label cross-entropy (FixMatch eq. 4, ClassMix, UniMatch): three independent checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.confident_cross_entropy import ConfidentCrossEntropy, confident_cross_entropy


def test_every_label_confident_is_the_plain_mean_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (5, 4, 4))
    loss = confident_cross_entropy(logits, targets, torch.ones(5, 4, 4, dtype=torch.float64), threshold=0.95)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))


def test_by_hand_the_sum_runs_over_confident_labels_and_the_mean_over_labeled_ones():
    logits = torch.log(torch.tensor([[0.8, 0.5, 0.5, 0.1], [0.2, 0.5, 0.5, 0.9]])).view(1, 2, 1, 4)
    targets = torch.tensor([[[0, 1, IGNORE_INDEX, 1]]])
    confidence = torch.tensor([[[0.99, 0.5, 0.99, 0.95]]])
    loss = confident_cross_entropy(logits, targets, confidence, threshold=0.95)  # 0.95 itself counts
    # counted pixels: 0, 1, 3; confident among them: 0 and 3
    assert loss.item() == pytest.approx((-math.log(0.8) - math.log(0.9)) / 3, rel=1e-6)


def test_image_labels_in_float64_against_a_loop():
    torch.manual_seed(1)
    logits = torch.randn(6, 4, dtype=torch.float64)
    targets = torch.tensor([0, 3, 2, 1, 1, 0])
    confidence = torch.tensor([0.97, 0.2, 0.95, 0.949, 1.0, 0.0], dtype=torch.float64)
    expected = 0.0
    for row, label, conf in zip(logits, targets, confidence, strict=True):
        if conf >= 0.95:
            expected += -(row[label] - torch.logsumexp(row, dim=0)).item()
    module = ConfidentCrossEntropy(threshold=0.95)
    assert module(logits, targets, confidence).item() == pytest.approx(expected / 6, rel=1e-12)
    with pytest.raises(ValueError, match="threshold"):
        ConfidentCrossEntropy(threshold=1.5)
    with pytest.raises(ValueError, match="differ"):
        confident_cross_entropy(logits, targets, confidence[:3], 0.5)
