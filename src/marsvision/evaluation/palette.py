"""Class colours in one place: the AI4Mars palette, a generic palette for N classes, and label colouring.

Plots, reports and the predictor's overlays all take their colours from here, so a class has one colour
everywhere. Colours are RGB ``uint8`` triples. No plotting library is imported.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

from marsvision.data.classes import IGNORE_INDEX

RGB = tuple[int, int, int]

AI4MARS_COLORS: dict[str, RGB] = {
    "soil": (150, 100, 50),  # brown
    "bedrock": (0, 114, 178),  # blue
    "sand": (240, 228, 66),  # yellow
    "big rock": (213, 94, 0),  # vermilion
    "rover": (204, 121, 167),  # reddish purple
    "background": (0, 158, 115),  # bluish green
}
"""AI4Mars classes (paper 000's six) by name; mostly Okabe-Ito (colour-blind-safe) hues, soil brown."""

IGNORE_COLOR: RGB = (0, 0, 0)
"""Colour of ignored / unlabeled pixels (label value ``IGNORE_INDEX``)."""

_BASE_COLORS: tuple[RGB, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
)


def generic_palette(num_classes: int) -> np.ndarray:
    """Return ``(num_classes, 3)`` uint8 distinct colours: 20 fixed ones, then golden-ratio hues."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    colors = list(_BASE_COLORS[:num_classes])
    for i in range(len(colors), num_classes):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.65 if i % 2 else 0.9, 0.95 if i % 3 else 0.75)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return np.asarray(colors, dtype=np.uint8).reshape(num_classes, 3)


def palette_for(class_names: Sequence[str]) -> np.ndarray:
    """Return ``(K, 3)`` uint8 colours: AI4Mars colours for AI4Mars names, generic colours for the rest."""
    generic = generic_palette(len(class_names))
    out = np.empty((len(class_names), 3), dtype=np.uint8)
    for i, name in enumerate(class_names):
        out[i] = AI4MARS_COLORS.get(name.lower(), tuple(generic[i]))
    return out


def colorize(
    label: np.ndarray,
    palette: np.ndarray,
    *,
    ignore_index: int = IGNORE_INDEX,
    ignore_color: RGB = IGNORE_COLOR,
) -> np.ndarray:
    """Map an integer label map ``(H, W)`` to an RGB image ``(H, W, 3)`` uint8.

    Raises:
        ValueError: a label value is neither a palette index nor ``ignore_index``.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {label.shape}")
    lut = np.zeros((max(256, ignore_index + 1), 3), dtype=np.uint8)
    lut[: len(palette)] = palette
    lut[ignore_index] = ignore_color
    valid = (label >= 0) & ((label < len(palette)) | (label == ignore_index))
    if not valid.all():
        bad = np.unique(label[~valid])[:5].tolist()
        raise ValueError(f"label values {bad} are outside 0..{len(palette) - 1} and not {ignore_index}")
    return lut[label.astype(np.int64)]
