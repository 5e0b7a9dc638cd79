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

from marsvision.data.msl import V1_CLASS_FILE, V1_IMAGE_DIR, V1_LISTS
from marsvision.training.config import load_config
from marsvision.training.data import reader, split_indices

SEG_ROOT = "{shared}/ai4mars-msl-256-train"
CLS_ROOT = "{shared}/msl-images-v1"
IMAGE_SIZE = 128
SEG_TEST_IMAGES = 200
"""Held out of the 1,000 AI4Mars images as the test set (the issue's set-up; marsvision: ``data.test_holdout``)."""
QUICK_SEG_IMAGES, QUICK_SEG_TEST_IMAGES = 140, 20
"""``--quick``: the first 140 AI4Mars pairs by name, 20 of them the test set, so that 120 remain for the 100-label
rows."""
QUICK_MSL_LINES = {"train": 160, "val": 80}
"""``--quick``: the first lines of MSL v1's train and val lists (the val lines are the test set)."""
FRACTION_SEED = 0
"""Fixes the test set and the labeled subsets for every pipeline and training seed."""


def seg_test_images(quick: bool = False) -> int:
    """How many AI4Mars images the comparison holds out as its test set."""
    return QUICK_SEG_TEST_IMAGES if quick else SEG_TEST_IMAGES


def seg_overrides(labels: int | None, quick: bool = False) -> list[str]:
    """marsvision data overrides that select this comparison's segmentation split (``labels`` None: all)."""
    count = "null" if labels is None else str(labels)
    return [
        "data.dataset=paired-folder",
        f"data.root='{SEG_ROOT}'",
        "data.class_mode=terrain4",
        f"data.image_size={IMAGE_SIZE}",
        "data.channels=1",
        "data.preprocess=plain",
        f"data.test_holdout={seg_test_images(quick)}",
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


def segmentation_split(labels: int | None, quick: bool = False) -> Split:
    """AI4Mars 256-px folder: 200 held-out test images; ``labels`` labeled images of the other 800 (None: all).

    ``quick``: the split of ``--quick``'s folder (:func:`write_quick_shared_data`), 20 of its images held out.
    """
    return _split(seg_overrides(labels, quick), "label")


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
        _link(target / "images" / image.name, image)
        _link(target / "labels" / Path(str(label)).name, Path(str(label)))
    return len(split.train)


def write_quick_shared_data(source: Path, target: Path) -> Path:
    """Write ``--quick``'s data into ``target``, a small copy of the shared-data folder ``source``, and return it.

    The first ``QUICK_SEG_IMAGES`` AI4Mars images by name that have a label, and MSL v1 with the first
    ``QUICK_MSL_LINES`` of its train and val lists and only their images in ``calibrated/`` (an unlisted image would
    join the unlabeled streams), all as links to the originals. The readers, the split policy and the recipes then
    run unchanged on it, in minutes.
    """
    seg_source, seg_target = source / Path(SEG_ROOT).name, target / Path(SEG_ROOT).name
    for folder in ("images", "labels"):
        (seg_target / folder).mkdir(parents=True, exist_ok=True)
    labels = {label.stem: label for label in (seg_source / "labels").iterdir()}
    paired = [image for image in sorted((seg_source / "images").iterdir()) if image.stem in labels]
    for image in paired[:QUICK_SEG_IMAGES]:
        _link(seg_target / "images" / image.name, image)
        _link(seg_target / "labels" / labels[image.stem].name, labels[image.stem])
    msl_source, msl_target = source / Path(CLS_ROOT).name, target / Path(CLS_ROOT).name
    (msl_target / V1_IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    _link(msl_target / V1_CLASS_FILE, msl_source / V1_CLASS_FILE)
    for split, count in QUICK_MSL_LINES.items():
        lines = (msl_source / V1_LISTS[split]).read_text(encoding="utf-8").splitlines()[:count]
        (msl_target / V1_LISTS[split]).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        for line in lines:
            listed = line.split()[0]
            _link(msl_target / listed, msl_source / listed)
    return target


def _link(link: Path, original: Path) -> None:
    """Link ``link`` to ``original``'s real path, unless a link is there already (a re-run of ``--quick``)."""
    if not link.is_symlink():
        link.symlink_to(original.resolve())
