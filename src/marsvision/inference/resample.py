"""Nearest-neighbour resampling of label maps and probability maps back to the input resolution."""

from __future__ import annotations

import numpy as np


def nearest_indices(source: int, target: int) -> np.ndarray:
    """Return the source index of each of ``target`` output positions (pixel-centre rule, like PIL NEAREST)."""
    if source < 1 or target < 1:
        raise ValueError(f"sizes must be positive, got source={source}, target={target}")
    centres = (np.arange(target, dtype=np.float64) + 0.5) * (source / target)
    return np.minimum(centres.astype(np.int64), source - 1)


def nearest_resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize the last two axes of ``array`` (``(..., h, w)``) to ``(height, width)`` by nearest neighbour.

    Nearest keeps label values valid (no blending of class ids) and copies probabilities unchanged.
    """
    h, w = array.shape[-2:]
    if (h, w) == (height, width):
        return array
    rows = nearest_indices(h, height)
    cols = nearest_indices(w, width)
    return array[..., rows[:, None], cols[None, :]]
