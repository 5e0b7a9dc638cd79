"""MSL surface image classification sets: v1 (Zenodo 1049137) and v2.1 (Zenodo 4033453), DATASETS.md §2-3."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from marsvision.data.base import (
    ClassificationDataset,
    ClassificationSample,
    check_nonempty,
    describe_folder,
    require_root,
)
from marsvision.data.classes import MSL_V1_UNUSED_IDS
from marsvision.data.errors import DatasetError, UnknownSplitError
from marsvision.data.imageio import list_image_files
from marsvision.data.names import acquisition_sol
from marsvision.data.preprocess import Preprocessing
from marsvision.data.reader import Reader
from marsvision.data.splits import reshuffle_pool
from marsvision.data.transforms import JointTransform

V1_LISTS = {
    "train": "train-calibrated-shuffled.txt",
    "val": "val-calibrated-shuffled.txt",
    "test": "test-calibrated-shuffled.txt",
}
V1_CLASS_FILE = "msl_synset_words-indexed.txt"
V1_IMAGE_DIR = "calibrated"
V21_LISTS = {"train": "train-set-v2.1.txt", "val": "val-set-v2.1.txt", "test": "test-set-v2.1.txt"}
V21_CLASS_FILE = "class_map.csv"
V21_IMAGE_DIR = "images"
V21_AUGMENTED = re.compile(r"-(fh|fv|r90|r180|r270)\.jpg$", re.IGNORECASE)
"""Offline augmentations in the v2.1 train list: ``<orig>_DRCL-{fh,fv,r90,r180,r270}.jpg`` (DATASETS.md
§3)."""


@dataclass(frozen=True)
class ListEntry:
    """One parsed split-list line."""

    line: int
    path: Path
    class_id: int


def parse_class_file(path: Path, separator: str | None) -> dict[int, str]:
    """Parse ``<id><separator><name>`` lines (``None``: any whitespace, split once) into ``{id: name}``."""
    if not path.is_file():
        raise DatasetError(path, "class file does not exist")
    classes: dict[int, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(separator, 1)
        if len(parts) != 2 or not parts[0].strip().isdigit() or not parts[1].strip():
            raise DatasetError(path, f"line {number}: cannot parse {raw!r}: expected '<class id> <name>'")
        class_id = int(parts[0])
        if class_id in classes:
            raise DatasetError(path, f"line {number}: class id {class_id} appears twice")
        classes[class_id] = parts[1].strip()
    if not classes:
        raise DatasetError(path, "class file is empty")
    return classes


def parse_split_list(path: Path, root: Path, prefix: str, valid_ids: set[int]) -> list[ListEntry]:
    """Parse ``<path> <class id>`` lines; paths, relative to ``root``/``prefix``, may not escape it."""
    if not path.is_file():
        raise DatasetError(path, "split list does not exist")
    root_abs = os.path.abspath(root)
    entries: list[ListEntry] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetError(path, f"line {number}: cannot parse {raw!r}: expected '<image path> <class id>'")
        relative, class_text = parts
        class_id = int(class_text)
        if class_id not in valid_ids:
            raise DatasetError(path, f"line {number}: class id {class_id} is not in the class file")
        if os.path.isabs(relative):
            raise DatasetError(path, f"line {number}: path {relative!r} is absolute; paths must be relative")
        full = os.path.abspath(os.path.join(root_abs, prefix, relative))
        if os.path.commonpath([root_abs, full]) != root_abs:
            raise DatasetError(path, f"line {number}: path {relative!r} escapes the dataset root {root}")
        entries.append(ListEntry(number, Path(full), class_id))
    return entries


def _contiguous(classes: dict[int, str], unused: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    ids = tuple(sorted(c for c in classes if c not in unused))
    return ids, tuple(classes[c] for c in ids)


class _MslBase(ClassificationDataset, Reader):
    """Shared machinery: read the lists of the wanted split, optionally reshuffle train+val."""

    layout_name = ""
    lists: ClassVar[dict[str, str]] = {}
    image_prefix = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")

    @classmethod
    def config_options(cls, data: Any) -> dict[str, Any]:
        return {"reshuffle_trainval": data.reshuffle_trainval}

    def _entries(self, root: Path, split: str, valid: set[int], reshuffle_trainval: int | None) -> list[ListEntry]:
        if split not in self.lists:
            raise UnknownSplitError(split, tuple(self.lists))
        if reshuffle_trainval is None or split == "test":
            return self._read_list(root, split, valid)
        train = self._read_list(root, "train", valid)
        val = self._read_list(root, "val", valid)
        pool = train + val
        new_train, new_val = reshuffle_pool(len(train), len(val), reshuffle_trainval)
        return [pool[i] for i in (new_train if split == "train" else new_val)]

    def _read_list(self, root: Path, split: str, valid: set[int]) -> list[ListEntry]:
        list_path = root / self.lists[split]
        if not list_path.is_file():
            raise DatasetError(
                list_path,
                f"split list missing: expected {self.layout_name} with {', '.join(self.lists.values())}; "
                f"found {describe_folder(root)}",
            )
        entries = parse_split_list(list_path, root, self.image_prefix, valid)
        for entry in entries:
            if not entry.path.is_file():
                raise DatasetError(list_path, f"line {entry.line}: image {entry.path} does not exist")
        return entries

    def _finish(
        self,
        root: Path,
        split: str,
        entries: list[ListEntry],
        class_ids: tuple[int, ...],
        class_names: tuple[str, ...],
        preprocessing: Preprocessing,
        transform: JointTransform | None,
        cache_dir: str | Path | None,
    ) -> None:
        check_nonempty(len(entries), root, split, f"{self.lists[split]} has no lines")
        contiguous = {official: index for index, official in enumerate(class_ids)}
        samples = []
        for entry in entries:
            if entry.class_id not in contiguous:
                raise DatasetError(entry.path, f"class id {entry.class_id} is marked unused in this dataset")
            samples.append(ClassificationSample(entry.path.name, entry.path, contiguous[entry.class_id]))
        sols = [acquisition_sol(sample.id) for sample in samples]
        times = None if any(s is None for s in sols) else [float(s) for s in sols if s is not None]
        super().__init__(root, samples, class_names, class_ids, preprocessing, transform, cache_dir, times)


class MslV1(_MslBase):
    """MSL surface images v1: 24 classes (official ids 0-24 without 22 'sun') mapped to contiguous ids 0-23.

    ``class_ids[target]`` gives the official id back. ``reshuffle_trainval=seed`` pools train+val and draws a
    new split of the same sizes (paper 002); test is unchanged. Images are RGB (``channels=3``) by default.
    """

    layout_name = "MSL surface v1 (calibrated/, msl_synset_words-indexed.txt)"
    lists = V1_LISTS
    image_prefix = ""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_size: int | None = None,
        preprocess: str = "plain",
        channels: int = 3,
        transform: JointTransform | None = None,
        cache_dir: str | Path | None = None,
        reshuffle_trainval: int | None = None,
    ) -> None:
        path = require_root(root)
        if not (path / V1_CLASS_FILE).is_file():
            raise DatasetError(
                path,
                f"wrong layout: expected MSL surface v1 ({V1_CLASS_FILE}, {V1_IMAGE_DIR}/, "
                f"{', '.join(V1_LISTS.values())}); found {describe_folder(path)}",
            )
        classes = parse_class_file(path / V1_CLASS_FILE, None)
        class_ids, class_names = _contiguous(classes, MSL_V1_UNUSED_IDS)
        entries = self._entries(path, split, set(classes), reshuffle_trainval)
        prep = Preprocessing(preprocess, image_size, channels)
        self._finish(path, split, entries, class_ids, class_names, prep, transform, cache_dir)

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / V1_CLASS_FILE).is_file()

    @classmethod
    def inspect_root(cls, root: Path) -> dict[str, Any]:
        return {"unlisted_images": len(msl_v1_unlisted_images(root))}


def msl_v1_unlisted_images(root: str | Path) -> list[Path]:
    """Return the images in ``calibrated/`` listed in no split list present (unlabeled data, not errors)."""
    path = require_root(root)
    listed: set[str] = set()
    for name in V1_LISTS.values():
        list_path = path / name
        if list_path.is_file():
            for line in list_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    listed.add(os.path.basename(line.split()[0]))
    return [file for file in list_image_files(path / V1_IMAGE_DIR) if file.name not in listed]


class MslV21(_MslBase):
    """MSL surface images v2.1: 19 classes from ``class_map.csv``.

    Augmented train copies are flagged in ``augmented`` and dropped with ``drop_augmented=True``.
    """

    layout_name = "MSL surface v2.1 (images/, class_map.csv)"
    lists = V21_LISTS
    image_prefix = V21_IMAGE_DIR

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        image_size: int | None = None,
        preprocess: str = "plain",
        channels: int = 3,
        transform: JointTransform | None = None,
        cache_dir: str | Path | None = None,
        reshuffle_trainval: int | None = None,
        drop_augmented: bool = False,
    ) -> None:
        path = find_v21_root(require_root(root))
        classes = parse_class_file(path / V21_CLASS_FILE, ",")
        class_ids, class_names = _contiguous(classes, ())
        entries = self._entries(path, split, set(classes), reshuffle_trainval)
        if drop_augmented:
            entries = [entry for entry in entries if not V21_AUGMENTED.search(entry.path.name)]
        prep = Preprocessing(preprocess, image_size, channels)
        self._finish(path, split, entries, class_ids, class_names, prep, transform, cache_dir)
        self.augmented = [bool(V21_AUGMENTED.search(sample.id)) for sample in self.samples]
        """Whether each item is an offline augmentation of another image."""

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / V21_CLASS_FILE).is_file() or any(
            (child / V21_CLASS_FILE).is_file() for child in root.iterdir() if child.is_dir()
        )

    @classmethod
    def config_options(cls, data: Any) -> dict[str, Any]:
        return {**super().config_options(data), "drop_augmented": data.drop_augmented}


def find_v21_root(root: Path) -> Path:
    """Return the v2.1 folder: ``root`` itself or its one sub-folder with ``class_map.csv`` (zip layout)."""
    if (root / V21_CLASS_FILE).is_file():
        return root
    children = [c for c in root.iterdir() if c.is_dir() and (c / V21_CLASS_FILE).is_file()]
    children = [c for c in children if c.name != "__MACOSX"]
    if len(children) == 1:
        return children[0]
    raise DatasetError(
        root,
        f"wrong layout: expected MSL surface v2.1 ({V21_CLASS_FILE}, {V21_IMAGE_DIR}/, "
        f"{', '.join(V21_LISTS.values())}); found {describe_folder(root)}",
    )
