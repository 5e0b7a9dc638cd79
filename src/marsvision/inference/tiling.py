"""Sliding-window prediction for images larger than the model's input, averaging softmax where windows overlap.

The rule (documented in ``marsvision predict --help`` and :func:`marsvision.inference.predict.predict_paths`):
windows are ``tile × tile`` pixels of the input at its native resolution; each window is resized to the
training ``image_size`` exactly as training resized whole images, predicted, and its probabilities are mapped
back to ``tile × tile`` (nearest). So ``tile`` = the side of the images the model was trained on (before
resizing) reproduces the training scale; ``tile`` = ``image_size`` feeds native pixels. Consecutive windows
overlap by ``overlap × tile`` pixels; the last window of a row or column is shifted back to end at the border,
so every pixel is covered and no window reaches outside the image. An image smaller than ``tile`` is padded
by repeating its edge pixels, and the padding is cut off again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_OVERLAP = 0.25
"""Share of a tile that consecutive windows have in common."""

WindowProbabilities = Callable[[list[np.ndarray]], np.ndarray]
"""Windows ``uint8`` ``(T, T, C)`` → class probabilities ``float32`` ``(N, K, T, T)``."""


def window_starts(length: int, tile: int, overlap: float = DEFAULT_OVERLAP) -> list[int]:
    """Return the start offsets of windows of ``tile`` pixels covering ``length`` pixels (``length >= tile``)."""
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if length < tile:
        raise ValueError(f"length {length} is smaller than the tile {tile}; pad first")
    stride = max(tile - round(tile * overlap), 1)
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def pad_to_tile(image: np.ndarray, tile: int) -> np.ndarray:
    """Pad ``(H, W, C)`` at the bottom and right by edge replication so that both sides are at least ``tile``."""
    pad_h = max(tile - image.shape[0], 0)
    pad_w = max(tile - image.shape[1], 0)
    if not pad_h and not pad_w:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def tiled_probabilities(
    image: np.ndarray,
    probabilities: WindowProbabilities,
    *,
    tile: int,
    overlap: float = DEFAULT_OVERLAP,
    batch_size: int = 4,
) -> np.ndarray:
    """Return ``float32`` ``(K, H, W)`` class probabilities of ``uint8`` ``(H, W, C)`` ``image`` from windows.

    ``probabilities`` is called with at most ``batch_size`` windows at a time; where windows overlap their
    probabilities are averaged with equal weights.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    height, width = image.shape[:2]
    padded = pad_to_tile(image, tile)
    boxes = [
        (top, left)
        for top in window_starts(padded.shape[0], tile, overlap)
        for left in window_starts(padded.shape[1], tile, overlap)
    ]
    total: np.ndarray | None = None
    count = np.zeros(padded.shape[:2], dtype=np.float32)
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first : first + batch_size]
        windows = [padded[top : top + tile, left : left + tile] for top, left in chunk]
        probs = probabilities(windows)
        if total is None:
            total = np.zeros((probs.shape[1], *padded.shape[:2]), dtype=np.float32)
        for (top, left), prob in zip(chunk, probs, strict=True):
            total[:, top : top + tile, left : left + tile] += prob
            count[top : top + tile, left : left + tile] += 1.0
    assert total is not None  # at least one window always exists
    return (total / count)[:, :height, :width]
