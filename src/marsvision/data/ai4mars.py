"""AI4Mars reader (Swan et al. 2021): releases 0.1 and 0.5/0.6, MSL NAVCAM and MER (DATASETS.md §1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from marsvision.data.base import (
    LABEL_WITHOUT_IMAGE,
    SegmentationDataset,
    SegmentationSample,
    check_nonempty,
    describe_folder,
    require_root,
    warn_missing_images,
)
from marsvision.data.classmodes import get_class_mode
from marsvision.data.errors import DatasetError, UnknownSplitError
from marsvision.data.names import acquisition_sol, edr_to_mask_stem, label_stem_candidates
from marsvision.data.preprocess import Preprocessing
from marsvision.data.reader import Reader
from marsvision.data.splits import chronological_split
from marsvision.data.transforms import JointTransform

ROVERS = ("msl", "mer", "all")
SPLITS = ("train", "test", "chronological-early", "chronological-late")
"""``chronological-*``: the train labels of the chosen rovers ordered by sol, split by fraction or
sol boundary (paper 002, §5: the first 60 % train, the rest test)."""
AGREEMENTS = ("min1", "min2", "min3")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg"})
ROVER_MASK_DIR = "mxy"
RANGE_MASK_DIR = "rng-30m"


@dataclass
class RoverTree:
    """Where one rover's images and labels live inside a release."""

    rover: str
    base: Path
    image_dirs: tuple[str, ...]
    train_label_dirs: tuple[str, ...]
    has_masks: bool


@dataclass
class Ai4MarsLayout:
    """The detected release (``"0.1"`` or ``"0.5+"``) and its rover trees."""

    release: str
    trees: dict[str, RoverTree] = field(default_factory=dict)


def _msl_tree(base: Path) -> RoverTree:
    return RoverTree("msl", base, ("edr",), ("train",), has_masks=True)


def _mer_tree(base: Path) -> RoverTree:
    return RoverTree("mer", base, ("eff", "test"), ("train/merged-unmasked", "train"), has_masks=False)


def detect_ai4mars_layout(root: Path) -> Ai4MarsLayout | None:
    """Return the AI4Mars layout under ``root`` (release root or its ``msl/`` folder), or ``None``.

    Release 0.1: ``msl/images/edr`` + ``msl/labels``; 0.5/0.6: ``msl/ncam/...`` and/or ``mer/...`` (never
    ``msl/mcam``).
    """
    ncam = root / "msl" / "ncam"
    mer = root / "mer"
    if (ncam / "images" / "edr").is_dir() or (mer / "images" / "eff").is_dir():
        layout = Ai4MarsLayout("0.5+")
        if (ncam / "images" / "edr").is_dir() and (ncam / "labels").is_dir():
            layout.trees["msl"] = _msl_tree(ncam)
        if (mer / "images" / "eff").is_dir() and (mer / "labels").is_dir():
            layout.trees["mer"] = _mer_tree(mer)
        return layout if layout.trees else None
    for base in (root / "msl", root):
        if (base / "images" / "edr").is_dir() and (base / "labels").is_dir():
            return Ai4MarsLayout("0.1", {"msl": _msl_tree(base)})
    return None


def _image_index(tree: RoverTree) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for folder in tree.image_dirs:  # earlier folders win (mer/images/test duplicates eff/)
        directory = tree.base / "images" / folder
        if not directory.is_dir():
            continue
        for file in sorted(directory.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                index.setdefault(file.stem, file)
    return index


def _label_files(tree: RoverTree, split: str, agreement: str) -> list[Path]:
    labels = tree.base / "labels"
    if split == "test":
        folder = labels / "test" / f"masked-gold-{agreement}-100agree"
        return sorted(folder.glob("*.png")) if folder.is_dir() else []
    for sub in tree.train_label_dirs:
        folder = labels / sub
        files = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if files:
            return files
    return []


class Ai4Mars(SegmentationDataset, Reader):
    """AI4Mars terrain labels as a segmentation dataset.

    ``rover``: msl | mer | all; ``split``: train | test | chronological-early | chronological-late;
    ``test_agreement``: min1 | min2 | min3 (the gold test labels); ``class_mode``: terrain4 | paper6 |
    terrain4+unlabeled | paper6+unlabeled. Labels without an image are skipped, listed in ``missing_images``,
    logged as a warning and reported as problems by ``data inspect`` (as the paired-folder reader does); missing
    rover/range masks mean no extra masking and are counted in ``missing_masks``.
    ``acquisition_times`` are sols parsed from the names.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        rover: str = "msl",
        test_agreement: str = "min3",
        class_mode: str = "terrain4",
        image_size: int | None = None,
        preprocess: str = "plain",
        channels: int = 1,
        transform: JointTransform | None = None,
        cache_dir: str | Path | None = None,
        chronological_fraction: float | None = 0.6,
        sol_boundary: float | None = None,
    ) -> None:
        path = require_root(root)
        if split not in SPLITS:
            raise UnknownSplitError(split, SPLITS)
        for name, value, valid in (
            ("rover", rover, ROVERS),
            ("test_agreement", test_agreement, AGREEMENTS),
        ):
            if value not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {value!r}")
        mode = get_class_mode(class_mode)
        layout = detect_ai4mars_layout(path)
        if layout is None:
            raise DatasetError(
                path,
                "wrong layout: expected AI4Mars release 0.1 (msl/images/edr/, msl/labels/train/) or 0.5/0.6 "
                f"(msl/ncam/images/edr/, mer/images/eff/); found {describe_folder(path)}",
            )
        self.release = layout.release
        wanted = ("msl", "mer") if rover == "all" else (rover,)
        trees = [layout.trees[name] for name in wanted if name in layout.trees]
        if not trees:
            raise DatasetError(
                path, f"release {layout.release} has no {rover} data; found rovers {sorted(layout.trees)}"
            )
        self.missing_images: list[str] = []
        self.missing_masks = {"rover": 0, "range": 0}
        self._rover_of: dict[str, str] = {}
        label_split = "test" if split == "test" else "train"
        samples: list[SegmentationSample] = []
        for tree in trees:
            samples += self._collect(tree, label_split, test_agreement)
        samples.sort(key=lambda sample: sample.id)
        times = [acquisition_sol(sample.id) for sample in samples]
        acquisition_times = None if any(t is None for t in times) else [float(t) for t in times if t is not None]
        if split.startswith("chronological"):
            if acquisition_times is None:
                raise DatasetError(path, "a chronological split needs names with an acquisition time")
            early, late = chronological_split(
                acquisition_times,
                fraction=None if sol_boundary is not None else chronological_fraction,
                sol_boundary=sol_boundary,
            )
            keep = early if split.endswith("early") else late
            samples = [samples[i] for i in keep]
            acquisition_times = [acquisition_times[i] for i in keep]
        detail = f"labels for rover {rover}"
        if self.missing_images:
            detail += f" ({len(self.missing_images)} labels have no image, e.g. {self.missing_images[0]})"
            warn_missing_images(self.missing_images)
        check_nonempty(len(samples), path, split, detail)
        self.rovers = [self._rover_of[sample.id] for sample in samples]
        """The rover (``msl`` or ``mer``) of each item."""
        prep = Preprocessing(preprocess, image_size, channels)
        super().__init__(path, samples, mode, prep, transform, cache_dir, acquisition_times)

    splits: ClassVar[tuple[str, ...]] = ("train", *(f"test-{level}" for level in AGREEMENTS))

    @classmethod
    def detect(cls, root: Path) -> bool:
        return detect_ai4mars_layout(root) is not None

    @classmethod
    def config_options(cls, data: Any) -> dict[str, Any]:
        return {"rover": data.rover, "test_agreement": data.test_agreement, "class_mode": data.class_mode}

    @classmethod
    def inspection_readers(cls, root: Path, **options: Any) -> dict[str, Callable[[], Any]]:
        """Every rover's train labels (or ``rover``'s), and the gold test labels at each agreement level.

        ``options`` go to every reader: ``class_mode="paper6", rover="msl"`` counts paper 000's six classes on
        Curiosity's images (its Fig. 6).
        """
        chosen = {"rover": "all", **options}
        readers: dict[str, Callable[[], Any]] = {"train": lambda: cls(root, split="train", **chosen)}
        for level in AGREEMENTS:
            readers[f"test-{level}"] = lambda level=level: cls(  # type: ignore[misc]
                root, split="test", test_agreement=level, **chosen
            )
        return readers

    def inspect_details(self) -> dict[str, Any]:
        return {"missing_masks": dict(self.missing_masks), "missing_images": len(self.missing_images)}

    def inspect_problems(self) -> list[str]:
        return [f"{label}: {LABEL_WITHOUT_IMAGE}" for label in self.missing_images]

    @classmethod
    def inspect_root(cls, root: Path) -> dict[str, Any]:
        """How many rover images no train or test label names (unlabeled images, not errors)."""
        layout = detect_ai4mars_layout(root)
        if layout is None:
            return {}
        unlabeled = 0
        for tree in layout.trees.values():
            labeled = {
                candidate
                for split, agreement in [("train", "min1"), *(("test", level) for level in AGREEMENTS)]
                for label in _label_files(tree, split, agreement)
                for candidate in label_stem_candidates(label.stem)
            }
            unlabeled += sum(1 for stem in _image_index(tree) if stem not in labeled)
        return {"unlabeled_images": unlabeled}

    def _collect(self, tree: RoverTree, split: str, agreement: str) -> list[SegmentationSample]:
        images = _image_index(tree)
        masks = tree.base / "images"
        samples = []
        for label in _label_files(tree, split, agreement):
            image = next((images[c] for c in label_stem_candidates(label.stem) if c in images), None)
            if image is None:
                self.missing_images.append(str(label))
                continue
            rover_mask = range_mask = None
            if tree.has_masks:
                rover_mask = masks / ROVER_MASK_DIR / f"{edr_to_mask_stem(image.stem, 'MXY')}.png"
                range_mask = masks / RANGE_MASK_DIR / f"{edr_to_mask_stem(image.stem, 'RNG')}.png"
                if not rover_mask.is_file():
                    self.missing_masks["rover"] += 1
                    rover_mask = None
                if not range_mask.is_file():
                    self.missing_masks["range"] += 1
                    range_mask = None
            samples.append(SegmentationSample(image.stem, image, label, rover_mask, range_mask))
            self._rover_of[image.stem] = tree.rover
        return samples


def ai4mars_image_files(root: Path) -> list[Path] | None:
    """Return the rover images of an AI4Mars release (MSL EDRs, MER EFFs; no masks, labels, mcam or duplicates).

    ``None`` if ``root`` is not an AI4Mars release: used to pretrain on "the whole AI4Mars image set".
    """
    layout = detect_ai4mars_layout(root)
    if layout is None:
        return None
    files: list[Path] = []
    for tree in layout.trees.values():
        files += sorted(_image_index(tree).values())
    return files
