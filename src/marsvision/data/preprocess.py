"""Preprocessing presets: resize, scale to [0, 1], the paper-000 brightening, channel count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from marsvision.data.imageio import resize_array

if TYPE_CHECKING:
    import torch  # imported where tensors are made: the ONNX predictor uses this module without PyTorch

PRESETS = ("paper000", "plain")
"""``paper000``: nearest resize of image and label, [0, 1], ×1.5 brightening, clip (SPEC.md, Method A, Data).
``plain``: bilinear image resize (nearest for labels), [0, 1]."""

PAPER000_IMAGE_SIZE = 512
"""Paper 000 resizes the 1024² NAVCAM images to 512² (SPEC.md, Method A, Data)."""

PAPER000_BRIGHTEN = 1.5
"""Paper 000 brightens the [0, 1] image by 50 % and clips (SPEC.md, Method A, Data)."""

UINT8_MAX = 255.0


@dataclass(frozen=True)
class Preprocessing:
    """How decoded arrays become tensors: preset, square size (``None`` keeps the native size), channels."""

    preset: str = "plain"
    image_size: int | None = None
    channels: int = 1

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preprocess must be one of {PRESETS}, got {self.preset!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be positive or None, got {self.image_size}")

    @property
    def size(self) -> int | None:
        """Return the square output size; the paper000 preset defaults to 512."""
        if self.image_size is None and self.preset == "paper000":
            return PAPER000_IMAGE_SIZE
        return self.image_size

    @property
    def key(self) -> str:
        """Return a string that identifies the array-level preprocessing (for the disk cache)."""
        return f"{self.preset}-{self.size}-{self.channels}"

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """Resize a decoded ``uint8`` ``(H, W, C)`` image (nearest for paper000, bilinear otherwise)."""
        size = self.size
        return image if size is None else resize_array(image, size, nearest=self.preset == "paper000")

    def resize_label(self, label: np.ndarray) -> np.ndarray:
        """Resize a ``uint8`` ``(H, W)`` label map with nearest-neighbour interpolation."""
        size = self.size
        return label if size is None else resize_array(label, size, nearest=True)

    def image_tensor(self, image: np.ndarray) -> torch.Tensor:
        """Turn a ``uint8`` ``(H, W, C)`` array into a ``float32`` ``(C, H, W)`` tensor in [0, 1]."""
        # numpy does the conversion: torch's threaded kernels are slower on small images in loader workers.
        array = image.transpose(2, 0, 1).astype(np.float32) / np.float32(UINT8_MAX)
        if self.preset == "paper000":
            np.clip(array * np.float32(PAPER000_BRIGHTEN), 0.0, 1.0, out=array)
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return tensor


def label_tensor(label: np.ndarray) -> torch.Tensor:
    """Turn a ``uint8`` ``(H, W)`` label map into an ``int64`` tensor."""
    import torch

    return torch.from_numpy(label.astype(np.int64))
