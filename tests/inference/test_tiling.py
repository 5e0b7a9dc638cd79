"""Sliding windows: coverage rules, and exact agreement with whole-image prediction for a pointwise model."""

from __future__ import annotations

import numpy as np
import pytest

from marsvision.evaluation.probabilities import softmax
from marsvision.inference.predict import Predictor
from marsvision.inference.spec import ModelSpec
from marsvision.inference.tiling import tiled_probabilities, window_starts

CENTRES = np.array([0.1, 0.4, 0.7, 0.95], dtype=np.float32)


class PointwiseModel:
    """Logits of each pixel depend on that pixel only: k-th logit = -50 (x - c_k)², so context never matters."""

    def __init__(self, size: int) -> None:
        self.spec = ModelSpec("segmentation", ("soil", "bedrock", "sand", "big rock"), size, "plain", 1)
        self.calls: list[int] = []

    def logits(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        return -50.0 * (batch - CENTRES[None, :, None, None]) ** 2  # (N, 1, S, S) broadcast → (N, 4, S, S)


def test_window_starts_cover_and_end_at_the_border():
    assert window_starts(96, 32, 0.0) == [0, 32, 64]
    assert window_starts(96, 32, 0.25) == [0, 24, 48, 64]  # stride 24, last window shifted back to end at 96
    assert window_starts(32, 32, 0.25) == [0]
    for length in (33, 50, 97, 130):
        starts = window_starts(length, 32, 0.25)
        covered = np.zeros(length, dtype=bool)
        for start in starts:
            covered[start : start + 32] = True
        assert covered.all() and starts[-1] + 32 == length
    with pytest.raises(ValueError):
        window_starts(20, 32)
    with pytest.raises(ValueError):
        window_starts(64, 32, 1.0)


def test_tiled_probabilities_equal_whole_image_for_a_pointwise_model():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(72, 80, 1), dtype=np.uint8)  # not a multiple of the tile
    model = PointwiseModel(size=32)
    whole = softmax(model.logits(image.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255.0)))[0]
    predictor = Predictor(model, tile=32, batch_size=3)
    tiled = tiled_probabilities(image, predictor._window_probabilities, tile=32, overlap=0.25, batch_size=3)
    assert tiled.shape == (4, 72, 80)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-6)
    assert max(model.calls) <= 3  # windows go through the model batch_size at a time
    labels = predictor.labels([image])[0]
    np.testing.assert_array_equal(labels, whole.argmax(0))


def test_small_image_is_padded_and_cropped_back():
    image = np.full((10, 20, 1), 250, dtype=np.uint8)  # 250/255 = 0.98: nearest centre 0.95 → class 3
    image[:, 12:] = 30  # 30/255 = 0.12: nearest centre 0.1 → class 0
    predictor = Predictor(PointwiseModel(size=32), tile=32)
    (label,) = predictor.labels([image])
    expected = np.zeros((10, 20), dtype=np.uint8)
    expected[:, :12] = 3
    np.testing.assert_array_equal(label, expected)
