"""What ``predict`` writes: label PNGs, colour overlays with a legend, and one CSV table; every file atomically.

Layout of the output folder::

    labels/<key>.png     class index per pixel (uint8, mode L), the input's size; 0-3 terrain, 4 rover,
                         5 background for the AI4Mars classes — i.e. the model's class ids
    overlays/<key>.png   the input blended with the class colours, a legend band on the right
    areas.csv            segmentation: image, ``width (px)``, ``height (px)``, then each class's share of the
                         image's pixels in [0, 1] (header ``<class> (pixel fraction)``, in class-id order)
    predictions.csv      classification: image, then class_i, id_i (the dataset's id), probability_i for the top k
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image, ImageDraw

from marsvision.atomic import FILE_MODE, atomic_write_bytes
from marsvision.evaluation.palette import colorize, palette_for

LABEL_DIR = "labels"
OVERLAY_DIR = "overlays"
AREAS_CSV = "areas.csv"
PREDICTIONS_CSV = "predictions.csv"
OVERLAY_ALPHA = 0.5
"""Weight of the class colour in the overlay; the rest is the image, so terrain texture stays visible."""
LEGEND_ROW = 14
LEGEND_WIDTH = 120


def write_png(path: Path, array: np.ndarray) -> None:
    """Encode ``uint8`` ``(H, W)`` (mode L) or ``(H, W, 3)`` (RGB) as PNG and write it atomically."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def write_label(out: Path, key: str, label: np.ndarray) -> Path:
    """Write the class-id map ``(H, W)`` as a single-channel 8-bit PNG; returns its path."""
    path = out / LABEL_DIR / f"{key}.png"
    write_png(path, label.astype(np.uint8))
    return path


def overlay(image: np.ndarray, label: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """Return RGB ``uint8`` ``(H, W + legend, 3)``: ``image`` blended with class colours, legend on the right."""
    palette = palette_for(class_names)
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    colours = colorize(label, palette).astype(np.float32)
    blended = (OVERLAY_ALPHA * colours + (1.0 - OVERLAY_ALPHA) * rgb.astype(np.float32)).round().astype(np.uint8)
    height = max(blended.shape[0], LEGEND_ROW * len(class_names) + 4)
    canvas = Image.new("RGB", (blended.shape[1] + LEGEND_WIDTH, height), (255, 255, 255))
    canvas.paste(Image.fromarray(blended), (0, 0))
    draw = ImageDraw.Draw(canvas)
    left = blended.shape[1] + 4
    for index, name in enumerate(class_names):
        top = 2 + index * LEGEND_ROW
        colour = tuple(int(c) for c in palette[index])
        draw.rectangle((left, top, left + 10, top + 10), fill=colour, outline=(0, 0, 0))
        draw.text((left + 14, top), f"{index} {name}", fill=(0, 0, 0))
    return np.asarray(canvas)


def write_overlay(out: Path, key: str, image: np.ndarray, label: np.ndarray, class_names: Sequence[str]) -> Path:
    """Write the overlay PNG of ``label`` on ``image``; returns its path."""
    path = out / OVERLAY_DIR / f"{key}.png"
    write_png(path, overlay(image, label, class_names))
    return path


def class_shares(label: np.ndarray, num_classes: int) -> np.ndarray:
    """Return the share of pixels of each class, ``float64`` ``(K,)`` summing to 1."""
    counts = np.bincount(label.ravel().astype(np.int64), minlength=num_classes)[:num_classes]
    shares: np.ndarray = counts / max(label.size, 1)
    return shares


def top_k(probabilities: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Return the ``k`` most probable ``(class id, probability)`` pairs, most probable first (ties: lower id)."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(i), float(probabilities[i])) for i in order]


def areas_header(class_names: Sequence[str]) -> list[str]:
    """Return the ``areas.csv`` header with units: image, width and height in pixels, one share column per class."""
    return ["image", "width (px)", "height (px)", *(f"{name} (pixel fraction)" for name in class_names)]


def predictions_header(k: int) -> list[str]:
    """Return the ``predictions.csv`` header: image, then class name, dataset id and probability of ranks 1..k."""
    columns = ["image"]
    for rank in range(1, k + 1):
        columns += [f"class_{rank}", f"id_{rank}", f"probability_{rank}"]
    return columns


class CsvTable:
    """A CSV file written row by row into a temporary file and renamed into place on a clean exit.

    Used as a context manager; if the block raises, the temporary file is removed and ``path`` untouched.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, FILE_MODE)  # the usual permissions, not mkstemp's 0600
        self._tmp = Path(tmp)
        self._handle = os.fdopen(fd, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(header)

    def write(self, row: Sequence[object]) -> None:
        """Append one row (floats are written with 6 significant digits)."""
        self._writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])

    def __enter__(self) -> CsvTable:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if kind is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
