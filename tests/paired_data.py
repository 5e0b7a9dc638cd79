"""A learnable toy paired folder, shared by the tests that train tiny segmentation models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_paired_folder(root: Path, count: int = 12, size: int = 32, seed: int = 0) -> Path:
    """A learnable toy paired folder: the label is the brightness band of each pixel (0-3), some pixels 255."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for i in range(count):
        label = rng.integers(0, 4, size=(size // 8, size // 8)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
        image = (label * 60 + rng.integers(0, 20, size=label.shape)).astype(np.uint8)
        label[rng.random(label.shape) < 0.1] = 255
        stem = f"NLA_{397681000 + 1000 * i:09d}EDR_F0020000AUT_04096M1"
        Image.fromarray(image, mode="L").save(root / "images" / f"{stem}.png")
        Image.fromarray(label, mode="L").save(root / "labels" / f"{stem}.png")
    return root
