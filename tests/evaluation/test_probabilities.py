"""Softmax and flip test-time augmentation on hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest

from marsvision.evaluation.probabilities import class_probabilities, softmax


def column_logits(batch: np.ndarray) -> np.ndarray:
    """Not flip-equivariant: class 1's logit grows with the column index, class 0's with the brightness."""
    n, _, h, w = batch.shape
    columns = np.broadcast_to(np.arange(w, dtype=np.float32), (n, h, w))
    return np.stack([batch[:, 0] * 4.0, columns / w * 4.0], axis=1)


def test_softmax_is_stable_and_normalised():
    probs = softmax(np.array([[1000.0, 1000.0, -1000.0]], dtype=np.float32))
    np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0]], atol=1e-7)


def test_flip_tta_averages_with_the_flipped_back_prediction():
    batch = np.random.default_rng(0).random((2, 1, 5, 7), dtype=np.float32)
    plain = softmax(column_logits(batch))
    flipped_back = softmax(column_logits(batch[..., ::-1].copy()))[..., ::-1]
    np.testing.assert_allclose(class_probabilities(column_logits, batch, "flip"), (plain + flipped_back) / 2, atol=1e-7)
    np.testing.assert_allclose(class_probabilities(column_logits, batch, "none"), plain, atol=1e-7)
    with pytest.raises(ValueError, match="tta"):
        class_probabilities(column_logits, batch, "rot90")


def test_flip_tta_for_image_logits_averages_directly():
    def logits(batch: np.ndarray) -> np.ndarray:  # (N, 2): left half vs right half brightness
        w = batch.shape[-1]
        return np.stack([batch[..., : w // 2].mean((1, 2, 3)), batch[..., w // 2 :].mean((1, 2, 3))], axis=1) * 10

    batch = np.zeros((1, 1, 4, 4), dtype=np.float32)
    batch[..., :2] = 1.0
    probs = class_probabilities(logits, batch, "flip")
    np.testing.assert_allclose(probs, [[0.5, 0.5]], atol=1e-6)  # the mirror image swaps the halves
