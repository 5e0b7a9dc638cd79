"""Dataset inspection: format, counts per split, images/pixels per class, missing masks, problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from marsvision.data.ai4mars import AGREEMENTS, Ai4Mars
from marsvision.data.base import ClassificationDataset, SegmentationDataset
from marsvision.data.errors import DatasetError
from marsvision.data.folders import PairedFolder, UnlabeledFolder
from marsvision.data.imageio import read_image
from marsvision.data.msl import MslV1, MslV21, msl_v1_unlisted_images
from marsvision.data.registry import detect_format


def _splits(root: Path, fmt: str) -> dict[str, Any]:
    """Return the constructible readers of every split of ``root``, or the error met, by split name."""
    builders: dict[str, Any] = {}
    if fmt == "ai4mars":
        builders["train"] = lambda: Ai4Mars(root, split="train", rover="all")
        for level in AGREEMENTS:
            builders[f"test-{level}"] = lambda level=level: Ai4Mars(root, "test", "all", level)
    elif fmt in ("msl-v1", "msl-v2.1"):
        reader = MslV1 if fmt == "msl-v1" else MslV21
        for split in ("train", "val", "test"):
            builders[split] = lambda split=split, reader=reader: reader(root, split=split)
    elif fmt == "paired-folder":
        builders["all"] = lambda: PairedFolder(root)
    else:
        builders["all"] = lambda: UnlabeledFolder(root)
    built: dict[str, Any] = {}
    for split, build in builders.items():
        try:
            built[split] = build()
        except DatasetError as error:
            built[split] = error
    return built


def _add(problems: list[str], error: DatasetError) -> None:
    if str(error) not in problems:
        problems.append(str(error))


def _segmentation_stats(dataset: SegmentationDataset, problems: list[str], decode: bool) -> dict[str, Any]:
    """Count pixels and images per class in one pass over the labels (decoding the images too if asked)."""
    pixels = np.zeros(dataset.num_classes + 1, np.int64)
    images = np.zeros(dataset.num_classes, np.int64)
    for index, sample in enumerate(dataset.samples):
        if decode:
            try:
                read_image(sample.image, dataset.preprocessing.channels)
            except DatasetError as error:
                _add(problems, error)
        try:
            counts = dataset.class_pixel_counts(index)
        except DatasetError as error:
            _add(problems, error)
            continue
        pixels += counts
        images += counts[:-1] > 0
    labeled = pixels[:-1].sum()
    names = dataset.class_names
    return {
        "images_per_class": {n: int(c) for n, c in zip(names, images, strict=True)},
        "pixels_per_class": {n: int(c) for n, c in zip(names, pixels[:-1], strict=True)},
        "pixel_share": {n: float(c / labeled) if labeled else 0.0 for n, c in zip(names, pixels[:-1], strict=True)},
        "unlabeled_pixels": int(pixels[-1]),
    }


def inspect_dataset(root: str | Path, validate: bool = True) -> dict[str, Any]:
    """Describe the dataset at ``root`` as a JSON-able dict.

    Keys: ``root``, ``format``, ``splits`` and ``problems``. Per split: ``count`` and per-class statistics
    (images per class; for segmentation also pixel counts and shares of labeled pixels as in paper 000 Fig. 6),
    AI4Mars ``missing_masks`` and ``missing_images``, or the ``error`` that made the split unreadable.
    ``problems`` lists every file that failed the scan, once. Every label is read; with ``validate`` every
    image is decoded too (minutes for the full AI4Mars set).
    """
    path = Path(root)
    fmt = detect_format(path)
    info: dict[str, Any] = {"root": str(path), "format": fmt, "splits": {}, "problems": []}
    problems: list[str] = info["problems"]
    for split, dataset in _splits(path, fmt).items():
        if isinstance(dataset, DatasetError):
            info["splits"][split] = {"count": 0, "error": str(dataset)}
            continue
        entry: dict[str, Any] = {"count": len(dataset)}
        if isinstance(dataset, SegmentationDataset):
            entry["task"] = "segmentation"
            entry["class_names"] = list(dataset.class_names)
            entry.update(_segmentation_stats(dataset, problems, decode=validate))
        elif isinstance(dataset, ClassificationDataset):
            entry["task"] = "classification"
            entry["class_names"] = list(dataset.class_names)
            entry["images_per_class"] = dataset.images_per_class()
        if isinstance(dataset, Ai4Mars):
            entry["missing_masks"] = dict(dataset.missing_masks)
            entry["missing_images"] = len(dataset.missing_images)
        if isinstance(dataset, PairedFolder):
            entry["unpaired_images"] = len(dataset.unpaired_images)
        if isinstance(dataset, UnlabeledFolder):
            entry["unreadable"] = [name for name, _ in dataset.unreadable]
            problems.extend(f"{name}: {problem}" for name, problem in dataset.unreadable)
        if validate and not isinstance(dataset, SegmentationDataset):
            found = dataset.validate()
            problems.extend(p for p in found if p not in problems)
        info["splits"][split] = entry
    if fmt == "msl-v1":
        info["unlisted_images"] = len(msl_v1_unlisted_images(path))
    return info


def plot_class_distribution(info: dict[str, Any], path: str | Path, split: str | None = None) -> Path:
    """Plot the class distribution of ``inspect_dataset`` output as a bar chart PNG.

    Pixel share for segmentation, image counts
    for classification; as a bar chart PNG at ``path``; ``split`` defaults to the first split with classes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    candidates = [s for s, e in info["splits"].items() if "images_per_class" in e]
    if not candidates:
        raise ValueError("info holds no split with class statistics")
    chosen = split if split is not None else candidates[0]
    entry = info["splits"][chosen]
    segmentation = "pixel_share" in entry
    values = entry["pixel_share"] if segmentation else entry["images_per_class"]
    names = list(values)
    heights = [100.0 * values[n] for n in names] if segmentation else [values[n] for n in names]
    figure, axis = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 2), 4))
    axis.bar(range(len(names)), heights, color="#b5651d")
    axis.set_xticks(range(len(names)), names, rotation=60 if len(names) > 6 else 0, ha="right")
    axis.set_ylabel("share of labeled pixels (%)" if segmentation else "images")
    axis.set_title(f"{info['format']} — {chosen}")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
