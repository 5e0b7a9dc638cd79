"""Images → model input in numpy only, the exact mirror of the training preprocessing.

Decoding (:func:`marsvision.data.imageio.read_image`) and resizing (:meth:`Preprocessing.resize_image`) are
shared with training; only the last step, :meth:`Preprocessing.image_tensor`, returns a torch tensor, so it
is mirrored here in numpy for the ONNX predictor. ``tests/inference/test_preprocessing.py`` checks that both
give bit-identical arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from marsvision.data.imageio import read_image
from marsvision.data.preprocess import PAPER000_BRIGHTEN, UINT8_MAX
from marsvision.inference.spec import ModelSpec


def load_image(path: Path, spec: ModelSpec) -> np.ndarray:
    """Decode ``path`` into ``uint8`` ``(H, W, channels)`` at its native size; raises ``DatasetError``."""
    return read_image(path, spec.channels)


def model_input(window: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Resize a ``uint8`` ``(H, W, C)`` window like training did and return ``float32`` ``(C, S, S)``."""
    resized = spec.preprocessing().resize_image(window)
    return to_float(resized, spec.preprocess)


def to_float(image: np.ndarray, preset: str) -> np.ndarray:
    """Return ``float32`` ``(C, H, W)`` in [0, 1] from ``uint8`` ``(H, W, C)``, brightened for ``paper000``.

    Same operations in the same order as :meth:`Preprocessing.image_tensor`, so the result is bit-identical.
    """
    array = image.transpose(2, 0, 1).astype(np.float32) / np.float32(UINT8_MAX)
    if preset == "paper000":
        np.clip(array * np.float32(PAPER000_BRIGHTEN), 0.0, 1.0, out=array)
    return np.ascontiguousarray(array)
