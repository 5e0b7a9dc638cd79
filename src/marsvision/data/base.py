"""Base classes of the labeled readers: segmentation (label maps) and classification (one id per image)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from marsvision.data.cache import DECODED, ArrayCache
from marsvision.data.classmodes import ClassMode
from marsvision.data.errors import DatasetError
from marsvision.data.imageio import check_values, image_size, read_image, read_label
from marsvision.data.preprocess import Preprocessing, label_tensor
from marsvision.data.transforms import JointTransform, apply_joint
from marsvision.progress import progress

Item = dict[str, Any]


@dataclass(frozen=True)
class SegmentationSample:
    """Files of one labeled image: the image, its label map and the optional rover and range masks."""

    id: str
    image: Path
    label: Path
    rover_mask: Path | None = None
    range_mask: Path | None = None


@dataclass(frozen=True)
class ClassificationSample:
    """One labeled image of a classification set: the file and its contiguous class id."""

    id: str
    image: Path
    target: int


LOGGER = logging.getLogger(__name__)
LABEL_WITHOUT_IMAGE = "label without an image (skipped)"
"""What every reader calls a label whose image is missing: skipped, counted, listed by ``data inspect``."""


def warn_missing_images(labels: Sequence[str]) -> None:
    """Say that labels without an image were skipped (``data inspect`` lists each one as a problem)."""
    LOGGER.warning(
        "%d label(s) have no image and are skipped, e.g. %s (`marsvision data inspect` lists them)",
        len(labels),
        labels[0],
    )


def require_root(root: str | Path) -> Path:
    """Return ``root`` as a ``Path``; raise a ``DatasetError`` if it is not an existing folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(path, "dataset root does not exist")
    if not path.is_dir():
        raise DatasetError(path, "dataset root is not a folder")
    return path


def describe_folder(root: Path, limit: int = 12) -> str:
    """Return a short listing of a folder's entries for error messages."""
    try:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    except OSError:
        return "(unreadable)"
    if not entries:
        return "an empty folder"
    more = f", … ({len(entries) - limit} more)" if len(entries) > limit else ""
    return ", ".join(entries[:limit]) + more


class ImageLoader:
    """Decode, resize and cache the arrays of one reader.

    Caches: in memory (:data:`~marsvision.data.cache.DECODED`, when a run turns it on), then in ``cache_dir``.
    """

    def __init__(self, root: Path, preprocessing: Preprocessing, cache_dir: str | Path | None) -> None:
        self.preprocessing = preprocessing
        self.cache = None if cache_dir is None else ArrayCache(cache_dir, dataset_root=root)

    def cached(self, sources: list[Path | None], tag: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array ``compute`` makes from ``sources`` (with preprocessing ``tag``), from the caches if there."""
        disk = self.cache

        def from_disk() -> np.ndarray:
            return compute() if disk is None else disk.get(sources, tag, compute)

        return DECODED.get(sources, tag, from_disk)

    def image(self, path: Path) -> np.ndarray:
        prep = self.preprocessing

        def compute() -> np.ndarray:
            return prep.resize_image(read_image(path, prep.channels))

        return self.cached([path], f"image-{prep.key}", compute)


SampleT = TypeVar("SampleT", SegmentationSample, ClassificationSample)


class LabeledDataset(Dataset[Item], Generic[SampleT]):
    """What both labeled readers share: samples, preprocessing, joint transform and the image loader."""

    def __init__(
        self,
        root: Path,
        samples: Sequence[SampleT],
        preprocessing: Preprocessing,
        transform: JointTransform | None,
        cache_dir: str | Path | None,
        acquisition_times: list[float] | None,
    ) -> None:
        self.root = root
        self.samples: list[SampleT] = list(samples)
        self.preprocessing = preprocessing
        self.transform = transform
        self.acquisition_times = acquisition_times
        self._loader = ImageLoader(root, preprocessing, cache_dir)

    @property
    def ids(self) -> list[str]:
        return [sample.id for sample in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _item(self, sample: SampleT, image: torch.Tensor, label: torch.Tensor) -> Item:
        if self.transform is not None:
            image, label = apply_joint(self.transform, image, label)
        return {"image": image, "label": label, "id": sample.id}


class SegmentationDataset(LabeledDataset[SegmentationSample]):
    """A labeled segmentation set.

    Items: ``{"image": (C, H, W) float32, "label": (H, W) int64, "id": str}``.
    """

    def __init__(
        self,
        root: Path,
        samples: Sequence[SegmentationSample],
        class_mode: ClassMode,
        preprocessing: Preprocessing,
        transform: JointTransform | None = None,
        cache_dir: str | Path | None = None,
        acquisition_times: list[float] | None = None,
    ) -> None:
        super().__init__(root, samples, preprocessing, transform, cache_dir, acquisition_times)
        self.class_mode = class_mode

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.class_mode.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_mode.class_names)

    def read_label(self, index: int) -> np.ndarray:
        """Return the mapped label map of item ``index`` at native size, checking values and sizes."""
        sample = self.samples[index]
        raw = read_label(sample.label)
        check_values(sample.label, raw, self.class_mode.raw_values)
        width, height = image_size(sample.image)
        if raw.shape != (height, width):
            raise DatasetError(
                sample.label,
                f"label size {raw.shape[1]}×{raw.shape[0]} differs from image size {width}×{height} "
                f"({sample.image.name})",
            )
        rover = self._read_mask(sample.rover_mask, raw.shape)
        far = self._read_mask(sample.range_mask, raw.shape)
        return self.class_mode.map(raw, rover, far)

    @staticmethod
    def _read_mask(path: Path | None, shape: tuple[int, ...]) -> np.ndarray | None:
        if path is None:
            return None
        mask = read_label(path)
        check_values(path, mask, (0, 1))
        if mask.shape != shape:
            raise DatasetError(path, f"mask size {mask.shape[1]}×{mask.shape[0]} differs from label size")
        return mask.astype(bool)

    def _label_array(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        prep = self.preprocessing

        def compute() -> np.ndarray:
            return prep.resize_label(self.read_label(index))

        sources = [sample.label, sample.rover_mask, sample.range_mask]
        return self._loader.cached(sources, f"label-{self.class_mode.name}-{prep.size}", compute)

    def __getitem__(self, index: int) -> Item:
        sample = self.samples[index]
        image_array = self._loader.image(sample.image)
        label_array = self._label_array(index)
        if image_array.shape[:2] != label_array.shape:
            raise DatasetError(sample.label, f"label shape {label_array.shape} ≠ image {image_array.shape[:2]}")
        return self._item(sample, self.preprocessing.image_tensor(image_array), label_tensor(label_array))

    def validate(self, what: str = "validate") -> list[str]:
        """Decode every image and label, returning one message per problem found (empty list: all good).

        ``what`` names the work on stderr while it runs (:mod:`marsvision.progress`).
        """
        problems: list[str] = []
        for index, sample in progress(enumerate(self.samples), what, "image", total=len(self.samples)):
            try:
                read_image(sample.image, self.preprocessing.channels)
                self.read_label(index)
            except DatasetError as error:
                problems.append(str(error))
        return problems

    def class_pixel_counts(self, index: int) -> np.ndarray:
        """Return the number of pixels of each class (plus the ignored count last) in item ``index``."""
        label = self.read_label(index)
        counts = np.bincount(label.ravel(), minlength=256)
        return np.concatenate([counts[: self.num_classes], counts[255:256]])

    def class_statistics(self, problems: list[str], decode: bool, what: str) -> dict[str, Any]:
        """Images and pixels per class in one pass over the labels (decoding the images too if asked).

        Files that fail are added to ``problems`` once each and left out of the counts; ``what`` names the work
        on stderr while it runs.
        """
        pixels = np.zeros(self.num_classes + 1, np.int64)
        images = np.zeros(self.num_classes, np.int64)
        for index, sample in progress(enumerate(self.samples), what, "image", total=len(self.samples)):
            if decode:
                try:
                    read_image(sample.image, self.preprocessing.channels)
                except DatasetError as error:
                    _add_problem(problems, error)
            try:
                counts = self.class_pixel_counts(index)
            except DatasetError as error:
                _add_problem(problems, error)
                continue
            pixels += counts
            images += counts[:-1] > 0
        labeled = pixels[:-1].sum()
        names = self.class_names
        return {
            "task": "segmentation",
            "class_names": list(names),
            "images_per_class": {n: int(c) for n, c in zip(names, images, strict=True)},
            "pixels_per_class": {n: int(c) for n, c in zip(names, pixels[:-1], strict=True)},
            "pixel_share": {n: float(c / labeled) if labeled else 0.0 for n, c in zip(names, pixels[:-1], strict=True)},
            "unlabeled_pixels": int(pixels[-1]),
        }


class ClassificationDataset(LabeledDataset[ClassificationSample]):
    """A labeled classification set.

    Items: ``{"image": (C, H, W) float32, "label": int64 scalar, "id": str}``.
    """

    def __init__(
        self,
        root: Path,
        samples: Sequence[ClassificationSample],
        class_names: tuple[str, ...],
        class_ids: tuple[int, ...],
        preprocessing: Preprocessing,
        transform: JointTransform | None = None,
        cache_dir: str | Path | None = None,
        acquisition_times: list[float] | None = None,
    ) -> None:
        super().__init__(root, samples, preprocessing, transform, cache_dir, acquisition_times)
        self.class_names = class_names
        self.class_ids = class_ids
        """Official class id of each contiguous id (``class_ids[target]``)."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def targets(self) -> list[int]:
        return [sample.target for sample in self.samples]

    def __getitem__(self, index: int) -> Item:
        sample = self.samples[index]
        image = self.preprocessing.image_tensor(self._loader.image(sample.image))
        return self._item(sample, image, torch.tensor(sample.target, dtype=torch.int64))

    def validate(self, what: str = "validate") -> list[str]:
        """Decode every image, returning one message per problem found (empty list: all good).

        ``what`` names the work on stderr while it runs (:mod:`marsvision.progress`).
        """
        problems: list[str] = []
        for sample in progress(self.samples, what, "image"):
            try:
                read_image(sample.image, self.preprocessing.channels)
            except DatasetError as error:
                problems.append(str(error))
        return problems

    def images_per_class(self) -> dict[str, int]:
        """Return the number of images of each class, by class name (zero for absent classes)."""
        counts = np.bincount(np.asarray(self.targets, dtype=np.int64), minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self.class_names, counts, strict=True)}

    def class_statistics(self, problems: list[str], decode: bool, what: str) -> dict[str, Any]:
        """Images per class; with ``decode`` every image is decoded and failures are added to ``problems``.

        ``what`` names the decoding on stderr while it runs.
        """
        if decode:
            problems.extend(p for p in self.validate(what) if p not in problems)
        return {
            "task": "classification",
            "class_names": list(self.class_names),
            "images_per_class": self.images_per_class(),
        }


def _add_problem(problems: list[str], error: DatasetError) -> None:
    if str(error) not in problems:
        problems.append(str(error))


def check_nonempty(dataset_len: int, root: Path, split: str, detail: str = "") -> None:
    """Raise a ``DatasetError`` if a split holds no items."""
    if dataset_len == 0:
        raise DatasetError(root, f"split {split!r} is empty{': ' + detail if detail else ''}")
