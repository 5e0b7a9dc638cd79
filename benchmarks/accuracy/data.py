"""The images every pipeline of the accuracy comparison trains and is tested on, from marsvision's split policy.

The peers receive file lists; marsvision's recipes receive the same split through their data config
(``test_holdout``, ``label_count``, ``fraction_seed``). Both come from one call of
:func:`marsvision.training.data.split_indices`, so the test set is identical for every pipeline and seed, and the
labeled images of a peer are exactly marsvision's labeled set (validation included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marsvision.training.config import load_config
from marsvision.training.data import reader, split_indices

SEG_ROOT = "{shared}/ai4mars-msl-256-train"
CLS_ROOT = "{shared}/msl-images-v1"
IMAGE_SIZE = 128
SEG_TEST_IMAGES = 200
"""Held out of the 1,000 AI4Mars images as the test set (the issue's set-up; marsvision: ``data.test_holdout``)."""
FRACTION_SEED = 0
"""Fixes the test set and the labeled subsets for every pipeline and training seed."""


def seg_overrides(labels: int | None) -> list[str]:
    """marsvision data overrides that select this comparison's segmentation split (``labels`` None: all)."""
    count = "null" if labels is None else str(labels)
    return [
        "data.dataset=paired-folder",
        f"data.root='{SEG_ROOT}'",
        "data.class_mode=terrain4",
        f"data.image_size={IMAGE_SIZE}",
        "data.channels=1",
        "data.preprocess=plain",
        f"data.test_holdout={SEG_TEST_IMAGES}",
        f"data.fraction_seed={FRACTION_SEED}",
        f"data.label_count={count}",
        "data.label_fraction=1.0",
    ]


def cls_overrides() -> list[str]:
    """marsvision data overrides of the classification comparison: MSL v1 train, tested on the official val split."""
    return [
        "data.dataset=msl-v1",
        f"data.root='{CLS_ROOT}'",
        f"data.image_size={IMAGE_SIZE}",
        "data.channels=3",
        "data.preprocess=plain",
        "data.train_split=train",
        "data.eval_split=val",
        "data.test_holdout=0",
        "data.chronological=null",
        "data.label_count=null",
        "data.label_fraction=1.0",
        f"data.fraction_seed={FRACTION_SEED}",
    ]


@dataclass
class Split:
    """File lists of one comparison setting, and the test labels every pipeline is scored against."""

    train: list[tuple[Path, Path | int]]
    """Labeled training images with their label file (segmentation) or class index (classification)."""
    unlabeled: list[Path]
    """Every image a pretraining peer may use without labels (all images of the training split)."""
    test_images: list[Path]
    test_labels: np.ndarray
    """(N, H, W) uint8 label maps at ``IMAGE_SIZE`` (255 unlabeled) or (N,) int64 class indices."""
    class_names: list[str]


def _split(overrides: list[str], labeled_with: str) -> Split:
    config = load_config(None, [*overrides, "data.val_fraction=0"])
    pool = reader(config.data, config.data.train_split)
    splits = split_indices(config.data, pool, lambda: reader(config.data, config.data.eval_split))
    samples = pool.samples
    train: list[tuple[Path, Path | int]] = [
        (samples[i].image, getattr(samples[i], labeled_with)) for i in splits.labeled
    ]
    test: Any = splits.test
    if labeled_with == "target":
        labels = np.asarray(test.targets, dtype=np.int64)
    else:
        labels = np.stack([np.asarray(test[i]["label"], dtype=np.uint8) for i in range(len(test))])
    test_samples = [test.dataset.samples[i] for i in test.indices] if hasattr(test, "indices") else test.samples
    return Split(
        train=train,
        unlabeled=[sample.image for sample in samples],
        test_images=[sample.image for sample in test_samples],
        test_labels=labels,
        class_names=splits.class_names,
    )


def segmentation_split(labels: int | None) -> Split:
    """AI4Mars 256-px folder: 200 held-out test images; ``labels`` labeled images of the other 800 (None: all)."""
    return _split(seg_overrides(labels), "label")


def classification_split() -> Split:
    """MSL v1: every train-split image labeled; the official val split is the test set."""
    return _split(cls_overrides(), "target")


def write_segmentation_dev_folder(target: Path) -> int:
    """Link the AI4Mars images outside the comparison's test set (and their labels) into a new paired folder.

    Recipes are tuned on this folder, holding part of it out as a dev set (``data.test_holdout=150``), so that
    tuning never sees the 200 test images. Returns the number of images linked.
    """
    split = segmentation_split(None)
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir()
    for image, label in split.train:
        (target / "images" / image.name).symlink_to(image.resolve())
        (target / "labels" / Path(str(label)).name).symlink_to(Path(str(label)).resolve())
    return len(split.train)
