"""Reading images and label maps from disk, with errors that name the file and the problem."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from marsvision.data.errors import DatasetError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
"""File extensions (lower-case) read as images."""

SKIPPED_DIRS = frozenset({"__MACOSX"})
"""Folder names never entered when listing images (macOS zip debris, DATASETS.md §3)."""

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)
_LABEL_MODES = ("L", "P", "1")


def is_image_file(path: Path) -> bool:
    """Return whether ``path`` has an image extension and is not a hidden file."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_image_files(root: Path, exclude_dirs: Iterable[str] = ()) -> list[Path]:
    """Return every image file below ``root`` (recursive, sorted), skipping hidden and excluded folders."""
    excluded = SKIPPED_DIRS | set(exclude_dirs)
    found: list[Path] = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(part in excluded or part.startswith(".") for part in parts[:-1]):
            continue
        if path.is_file() and is_image_file(path):
            found.append(path)
    return sorted(found)


def image_size(path: Path) -> tuple[int, int]:
    """Return ``(width, height)`` from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DatasetError(path, "file does not exist") from None
    except _DECODE_ERRORS as error:
        raise DatasetError(path, f"cannot read image header ({error})") from error


def read_image(path: Path, channels: int) -> np.ndarray:
    """Decode an image into a ``uint8`` array of shape ``(H, W, channels)``; ``channels`` is 1 (L) or 3 (RGB).

    Colour images are converted to grayscale for ``channels=1``; grayscale images are
    replicated for ``channels=3``.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as image:
            image.load()
            converted = image.convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise DatasetError(path, "image file does not exist") from None
    except _DECODE_ERRORS as error:
        raise DatasetError(path, f"cannot decode image ({error})") from error
    array = np.array(converted, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def read_label(path: Path) -> np.ndarray:
    """Decode a single-channel label PNG into a ``uint8`` array ``(H, W)`` of raw values.

    Colour (RGB) label files are rejected: label values are small integers and must never be converted.
    """
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode not in _LABEL_MODES:
                raise DatasetError(
                    path, f"label must be a single-channel 8-bit image (mode L, P or 1); found mode {mode}"
                )
            array = np.array(image)
    except FileNotFoundError:
        raise DatasetError(path, "label file does not exist") from None
    except _DECODE_ERRORS as error:
        raise DatasetError(path, f"cannot decode label ({error})") from error
    return array.astype(np.uint8, copy=False)


def resize_array(array: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    """Resize an ``(H, W)`` or ``(H, W, C)`` ``uint8`` array to ``size × size`` (nearest or bilinear)."""
    if array.shape[0] == size and array.shape[1] == size:
        return array
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    squeeze = array.ndim == 3 and array.shape[2] == 1
    image = Image.fromarray(array[:, :, 0] if squeeze else array)
    resized = np.array(image.resize((size, size), resample=resample))
    return resized[:, :, None] if squeeze else resized


def check_values(path: Path, label: np.ndarray, allowed: Iterable[int]) -> None:
    """Raise a ``DatasetError`` naming the file and the values if ``label`` has values not in ``allowed``."""
    counts = np.bincount(label.ravel(), minlength=256)
    allowed_set = set(allowed)
    bad = [int(value) for value in np.flatnonzero(counts) if int(value) not in allowed_set]
    if bad:
        raise DatasetError(
            path,
            f"label values {bad} are outside the class set {sorted(allowed_set)} ({len(bad)} unexpected)",
        )
