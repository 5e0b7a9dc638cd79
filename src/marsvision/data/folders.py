"""Generic folders: paired ``images/<id>.*`` ↔ ``labels/<id>.png`` (DATASETS.md §5), unlabeled trees (§4)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from marsvision.data.ai4mars import ai4mars_image_files
from marsvision.data.base import (
    LABEL_WITHOUT_IMAGE,
    ImageLoader,
    Item,
    SegmentationDataset,
    SegmentationSample,
    check_nonempty,
    describe_folder,
    require_root,
    warn_missing_images,
)
from marsvision.data.classmodes import custom_class_mode, get_class_mode
from marsvision.data.errors import DatasetError, UnknownSplitError
from marsvision.data.imageio import image_size as header_size
from marsvision.data.imageio import is_image_file, list_image_files, read_image
from marsvision.data.names import acquisition_sol
from marsvision.data.preprocess import Preprocessing
from marsvision.data.reader import Reader
from marsvision.data.transforms import JointTransform
from marsvision.progress import progress

LOGGER = logging.getLogger(__name__)

PAIRED_SPLITS = ("all", "train")
"""A folder is one split; ``"train"`` is accepted as a synonym of ``"all"``."""


def times_from_names(ids: Iterable[str]) -> list[float] | None:
    """Return the sol of each id parsed from its name, or ``None`` if any name does not parse."""
    times: list[float] = []
    for name in ids:
        sol = acquisition_sol(name)
        if sol is None:
            return None
        times.append(sol)
    return times


class PairedFolder(SegmentationDataset, Reader):
    """Segmentation pairs ``images/<id>.<ext>`` ↔ ``labels/<id>.png`` with AI4Mars values (0-3, 255).

    Images without a label are counted in ``unpaired_images`` and skipped; a label without an image is skipped,
    listed in ``missing_images``, logged as a warning and reported as a problem by ``data inspect`` (as the
    AI4Mars reader does).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        class_mode: str = "terrain4",
        class_names: tuple[str, ...] | None = None,
        image_size: int | None = None,
        preprocess: str = "plain",
        channels: int = 1,
        transform: JointTransform | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        path = require_root(root)
        if split not in PAIRED_SPLITS:
            raise UnknownSplitError(split, PAIRED_SPLITS)
        images_dir, labels_dir = path / "images", path / "labels"
        if not images_dir.is_dir() or not labels_dir.is_dir():
            raise DatasetError(
                path,
                f"wrong layout: expected a paired folder with images/ and labels/; found {describe_folder(path)}",
            )
        images: dict[str, Path] = {}
        for file in sorted(images_dir.iterdir()):
            if file.is_file() and is_image_file(file):
                if file.stem in images:
                    raise DatasetError(file, f"two images share the id {file.stem!r} ({images[file.stem].name})")
                images[file.stem] = file
        samples: list[SegmentationSample] = []
        paired: set[str] = set()
        self.missing_images: list[str] = []
        for label in sorted(labels_dir.glob("*.png")):
            image = images.get(label.stem)
            if image is None:
                self.missing_images.append(str(label))
                continue
            samples.append(SegmentationSample(label.stem, image, label))
            paired.add(label.stem)
        self.unpaired_images = sorted(str(p) for stem, p in images.items() if stem not in paired)
        if self.missing_images:
            warn_missing_images(self.missing_images)
        check_nonempty(len(samples), path, split, "no label PNG with its image in images/")
        mode = custom_class_mode(class_names) if class_names is not None else get_class_mode(class_mode)
        if mode.masks_as_classes:
            raise ValueError(f"class_mode {class_mode!r} needs rover/range masks, which paired folders lack")
        prep = Preprocessing(preprocess, image_size, channels)
        ids = [sample.id for sample in samples]
        super().__init__(path, samples, mode, prep, transform, cache_dir, times_from_names(ids))

    @classmethod
    def detect(cls, root: Path) -> bool:
        return (root / "images").is_dir() and (root / "labels").is_dir()

    @classmethod
    def config_options(cls, data: Any) -> dict[str, Any]:
        return {"class_mode": data.class_mode}

    def inspect_details(self) -> dict[str, Any]:
        return {"unpaired_images": len(self.unpaired_images), "missing_images": len(self.missing_images)}

    def inspect_problems(self) -> list[str]:
        return [f"{label}: {LABEL_WITHOUT_IMAGE}" for label in self.missing_images]


class UnlabeledFolder(Dataset[Item], Reader):
    """Every image below ``root`` (recursive): items ``{"image": (C, H, W) float32, "id": relative path}``.

    Pointed at an AI4Mars release, it reads only the rover images (not masks or labels) unless
    ``ai4mars_images_only=False``. Files whose header cannot be read are reported (``unreadable``, logged by
    name) and skipped at construction; a file that fails to decode later is recorded the same way and the next
    readable file is returned instead.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        image_size: int | None = None,
        preprocess: str = "plain",
        channels: int = 1,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        cache_dir: str | Path | None = None,
        exclude_dirs: Iterable[str] = (),
        check_headers: bool = True,
        ai4mars_images_only: bool = True,
    ) -> None:
        path = require_root(root)
        if split not in PAIRED_SPLITS:
            raise UnknownSplitError(split, PAIRED_SPLITS)
        release_images = ai4mars_image_files(path) if ai4mars_images_only else None
        files = list_image_files(path, exclude_dirs) if release_images is None else release_images
        self.unreadable: list[tuple[str, str]] = []
        if check_headers:
            kept = []
            for file in files:
                try:
                    header_size(file)
                    kept.append(file)
                except DatasetError as error:
                    self._report(file, error.problem)
            files = kept
        check_nonempty(len(files), path, split, f"no readable image file; found {describe_folder(path)}")
        self.root = path
        self.files = files
        self.preprocessing = Preprocessing(preprocess, image_size, channels)
        self.transform = transform
        self._loader = ImageLoader(path, self.preprocessing, cache_dir)
        self.acquisition_times = times_from_names(self.ids)

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(is_image_file(p) for p in root.iterdir()) or bool(list_image_files(root))

    def inspect_details(self) -> dict[str, Any]:
        return {"unreadable": [name for name, _ in self.unreadable]}

    def inspect_problems(self) -> list[str]:
        return [f"{name}: {problem}" for name, problem in self.unreadable]

    def _report(self, file: Path, problem: str) -> None:
        LOGGER.warning("skipping unreadable image %s: %s", file, problem)
        self.unreadable.append((str(file), problem))

    @property
    def skipped(self) -> int:
        """Return how many files were skipped as unreadable."""
        return len(self.unreadable)

    @property
    def ids(self) -> list[str]:
        return [file.relative_to(self.root).as_posix() for file in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Item:
        for offset in range(len(self.files)):
            file = self.files[(index + offset) % len(self.files)]
            try:
                array = self._loader.image(file)
            except DatasetError as error:
                if all(name != str(file) for name, _ in self.unreadable):
                    self._report(file, error.problem)
                continue
            image = self.preprocessing.image_tensor(array)
            if self.transform is not None:
                image = self.transform(image)
            return {"image": image, "id": file.relative_to(self.root).as_posix()}
        raise DatasetError(self.root, "no image in this folder could be decoded")

    def validate(self, what: str = "validate") -> list[str]:
        """Decode every image, returning one message per unreadable file (``what`` names the work on stderr)."""
        problems = []
        for file in progress(self.files, what, "image"):
            try:
                read_image(file, self.preprocessing.channels)
            except DatasetError as error:
                problems.append(str(error))
        return problems
