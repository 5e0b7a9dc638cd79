"""Turn a :class:`DataConfig` and a method's declared streams into the data of a run.

Split policy, in order (SPEC.md; a label budget counts every labeled image a run touches):

1. the **test set** is the official evaluation split, or ``test_holdout`` images held out of the training split,
   or the late part of a chronological split; the rest of the training split is the **pool**;
2. the **labeled set** is a nested ``label_fraction`` (or ``label_count``) of the pool, drawn with
   ``fraction_seed``: 1 % of AI4Mars is 161 of its 16,064 training images, as in paper 000;
3. the **validation set** (early stopping and checkpoint choice only) is ``val_fraction`` of the labeled set,
   so it is inside the label budget; the rest of the labeled set trains;
4. the **unlabeled set** is the pool's remainder (the labeled images when there is none), plus the images of
   ``unlabeled_root`` and, with ``unlabeled_test_images``, the test images without their labels.

Each training step draws one batch from every stream the method declares (``MarsvisionModule.streams``): the
first stream defines the epoch and the others ride along for exactly as many batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from torchvision.transforms import v2

from marsvision.data.cache import DECODED
from marsvision.data.errors import DatasetError
from marsvision.data.registry import build_dataset, reader_class
from marsvision.data.samplers import ClassBalancedBatchSampler
from marsvision.data.splits import chronological_split, complement_indices, holdout_split, nested_fraction_indices
from marsvision.data.transforms import segmentation_train_transform
from marsvision.data.views import JointView, MultiView, PaddingAware, view_transform, weak_view
from marsvision.data.wrappers import LabelDropped, MappedDataset
from marsvision.training.config import DataConfig, RunConfig
from marsvision.training.reproducibility import EpochKeyedBatches, EpochSeededSampler, ItemSeeded
from marsvision.training.stream_views import batched_views, simclr_view, strong_view

PIN_MEMORY = torch.cuda.is_available()
"""Pinned host memory speeds up copies to a GPU and only costs memory without one."""
SHARED_DATA_ENV = "MARSVISION_SHARED_DATA"
DEFAULT_SHARED_DATA = "../shared/data"

Stream = Literal[
    "labeled", "balanced", "labeled-balanced", "unlabeled", "unlabeled-views", "unlabeled-weak-strong", "simclr-views"
]
"""What a method may draw each step: labeled images with the task's training augmentation; class-balanced
pairs of different labeled images (paper 002's L_s); the same class-balanced batches with the labeled stream's
augmentation (Decoupling's classifier re-training); unlabeled images (segmentation: the training augmentation,
with ``valid`` marking the image's own pixels; classification: a weak flip); two strong views of each unlabeled
image (paper 002's L_u); a weak and a strong view of each unlabeled image (FixMatch); two SimCLR views of every
image of the training split (pretraining)."""
Task = Literal["pretrain", "segmentation", "classification"]


def resolve_root(root: str) -> str:
    """Expand ``{shared}`` (the folder of shared real data, $MARSVISION_SHARED_DATA) and ``~`` in a root."""
    shared = os.environ.get(SHARED_DATA_ENV, DEFAULT_SHARED_DATA)
    return str(Path(root.replace("{shared}", shared)).expanduser())


def existing_root(root: str) -> str:
    """``resolve_root(root)``; when it names no folder and came from ``{shared}``, say what ``{shared}`` stood for.

    Without $MARSVISION_SHARED_DATA, ``{shared}`` is relative to the working folder, so a run started from
    another folder (a git worktree, a notebook's folder) misses the data: the message names the variable.
    """
    resolved = resolve_root(root)
    if "{shared}" in root and not Path(resolved).exists():
        shared = os.environ.get(SHARED_DATA_ENV)
        meaning = f"${SHARED_DATA_ENV}={shared}" if shared else f"{DEFAULT_SHARED_DATA} from {Path.cwd()}"
        raise DatasetError(
            resolved, f"dataset root does not exist ({{shared}} stood for {meaning}; set ${SHARED_DATA_ENV})"
        )
    return resolved


def reader(cfg: DataConfig, split: str, transform: Callable[..., Any] | None = None, root: str | None = None) -> Any:
    """The registered reader of ``cfg.dataset`` for ``split``, built with the options it takes from ``cfg``."""
    return reader_class(cfg.dataset).from_config(cfg, split, root=existing_root(root or cfg.root), transform=transform)


def _chronological_test(cfg: DataConfig, pool: Any) -> tuple[list[int], list[int]]:
    if pool.acquisition_times is None:
        raise ValueError(f"{cfg.root}: chronological split needs acquisition times in the file names")
    return chronological_split(pool.acquisition_times, fraction=cfg.chronological)


HELD_OUT_TEST_SETS: dict[str, Callable[[DataConfig, Any], tuple[list[int], list[int]]]] = {
    "holdout": lambda cfg, pool: holdout_split(len(pool), cfg.test_holdout, seed=cfg.fraction_seed),
    "chronological-late": _chronological_test,
}
"""Test sets carved out of the training split's reader (the pool's positions, the test images' positions)."""


def test_split_name(cfg: DataConfig) -> str:
    """Name of the test set the split policy picks: ``holdout``, ``chronological-late`` or the evaluation split."""
    if cfg.test_holdout > 0:
        return "holdout"
    if cfg.chronological is not None:
        return "chronological-late"
    return cfg.eval_split


@dataclass
class Splits:
    """Index lists into the training split's reader, plus the test set (which may be another reader)."""

    labeled: list[int]
    """Labeled images that train (the labeled set minus validation)."""
    val: list[int]
    unlabeled: list[int]
    """The pool's images outside the labeled set."""
    test: Dataset[Any]
    class_names: list[str]
    test_indices: list[int] | None = None
    """Positions of the test images in the training split's reader, when the test set was carved out of it."""


def holds_out_test_images(cfg: DataConfig) -> bool:
    """Whether step 1 of the split policy holds the test images out of the training split (else: ``eval_split``)."""
    return test_split_name(cfg) in HELD_OUT_TEST_SETS


def split_indices(cfg: DataConfig, pool: Any, eval_reader: Callable[[], Any]) -> Splits:
    """Apply the split policy of this module's docstring to ``pool`` (the training split's reader)."""
    indices = list(range(len(pool)))
    test_indices: list[int] | None = None
    carve_test_set = HELD_OUT_TEST_SETS.get(test_split_name(cfg))
    if carve_test_set is not None:
        indices, test_indices = carve_test_set(cfg, pool)
    test = Subset(pool, test_indices) if test_indices is not None else eval_reader()
    if cfg.label_count is not None and cfg.label_count > len(indices):
        raise ValueError(f"data.label_count={cfg.label_count} is more than the {len(indices)} images of the pool")
    chosen = nested_fraction_indices(
        len(indices),
        fraction=None if cfg.label_count else cfg.label_fraction,
        count=cfg.label_count,
        seed=cfg.fraction_seed,
    )
    labeled = [indices[i] for i in chosen]
    unlabeled = [indices[i] for i in complement_indices(len(indices), chosen)]
    val: list[int] = []
    if cfg.val_fraction > 0 and len(labeled) > 1:
        val_count = min(max(1, round(cfg.val_fraction * len(labeled))), len(labeled) - 1)
        kept, held = holdout_split(len(labeled), val_count, seed=cfg.fraction_seed + 1)
        labeled, val = [labeled[i] for i in kept], [labeled[i] for i in held]
    return Splits(labeled, val, unlabeled, test, list(pool.class_names), test_indices)


@dataclass
class ClassInfo:
    """What a model must know of the dataset's classes: names, the dataset's own ids, labeled images per class."""

    names: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    """The dataset's id of each class index (MSL v1 skips 22 'sun'), so predictions map back."""
    samples_per_class: list[int] = field(default_factory=list)
    """Labeled training samples per class: images (classification), labeled pixels (segmentation, when its
    cross-entropy weighs classes by frequency); empty when nothing needs them."""

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = list(range(len(self.names)))

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any]) -> ClassInfo:
        """Rebuild from a checkpoint's ``hyper_parameters``."""
        return cls(
            list(hparams.get("class_names", [])),
            list(hparams.get("class_ids") or []),
            list(hparams.get("samples_per_class") or []),
        )


@dataclass
class RunData:
    """Everything a run trains and is tested on."""

    train: CombinedLoader
    """One batch per step: ``{stream: batch}`` for each stream the method declares."""
    val: DataLoader[Any] | None
    test: Dataset[Any] | None
    test_split: str
    classes: ClassInfo
    images_seen: dict[str, int]
    """Distinct images the run touches: ``labeled`` (training and validation) and ``unlabeled``."""


def unlabeled_images(config: RunConfig, splits: Splits | None) -> Dataset[Any]:
    """The run's unlabeled images, un-augmented and without labels (step 4 of the split policy).

    ``splits`` None (pretraining): every image of the training split, and with ``unlabeled_test_images`` those
    of the evaluation split when the test set is not carved out of the training split (which pretraining already
    sees whole). Images of ``unlabeled_root`` are added in both cases.
    """
    cfg = config.data
    parts: list[Dataset[Any]] = []
    if splits is None:
        parts.append(LabelDropped(reader(cfg, cfg.train_split)))
        if cfg.unlabeled_test_images and not holds_out_test_images(cfg):
            parts.append(LabelDropped(reader(cfg, cfg.eval_split)))
    else:
        pool = reader(cfg, cfg.train_split)
        parts.append(LabelDropped(Subset(pool, splits.unlabeled or splits.labeled)))
        if cfg.unlabeled_test_images:
            parts.append(LabelDropped(splits.test))
    if cfg.unlabeled_root:
        parts.append(
            build_dataset(
                "unlabeled-folder",
                root=existing_root(cfg.unlabeled_root),
                image_size=cfg.image_size,
                preprocess=cfg.preprocess,
                channels=cfg.channels,
                cache_dir=cfg.cache_dir,
            )
        )
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


class ImageTransform:
    """Item function applying an image-only transform to ``item["image"]`` (picklable, for loader workers)."""

    def __init__(self, transform: Callable[..., Any]) -> None:
        self.transform = transform

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "image": self.transform(item["image"])}


def _simclr_views(config: RunConfig) -> MultiView:
    return MultiView(view_transform(simclr_view(config)), n_views=2)


def _decoded(item: dict[str, Any]) -> dict[str, Any]:
    """The item as the reader decoded it (its views are made later, for the whole batch)."""
    return item


def _samples_per_class(config: RunConfig, task: Task, pool: Any, labeled: list[int], targets: list[int]) -> list[int]:
    """Labeled training samples per class: images (classification), or pixels (segmentation).

    Pixels are counted only when the segmentation loss weighs its classes by frequency (every labeled label map
    is read once).
    """
    if task == "classification":
        return [targets.count(c) for c in range(len(pool.class_names))]
    if config.segmentation.class_weighting == "none":
        return []
    pixels = sum((pool.class_pixel_counts(i)[:-1] for i in labeled), start=np.zeros(len(pool.class_names), np.int64))
    return [int(count) for count in pixels]


def build_run_data(config: RunConfig, task: Task, streams: tuple[str, ...]) -> RunData:
    """The loaders of ``streams`` for a method of ``task``, the validation loader and the held-out test set."""
    cfg = config.data
    DECODED.configure(cfg.memory_cache_mib * 2**20)
    batched = batched_views(config, task)  # then the module makes the views of whole batches (stream_views.py)
    if task == "pretrain":
        images = unlabeled_images(config, None)
        pairs = images if batched else MappedDataset(images, _simclr_views(config))
        pair_loader = {"simclr-views": _shuffled_loader(pairs, cfg, cfg.batch_size, config.seed)}
        seen = {"labeled": 0, "unlabeled": len(pairs)}  # type: ignore[arg-type]
        return RunData(CombinedLoader(pair_loader, mode="min_size"), None, None, "", ClassInfo(), seen)

    pool = reader(cfg, cfg.train_split)
    splits = split_indices(cfg, pool, lambda: reader(cfg, cfg.eval_split))
    targets = [pool.targets[i] for i in splits.labeled] if task == "classification" else []
    classes = ClassInfo(
        splits.class_names,
        list(getattr(pool, "class_ids", [])),
        _samples_per_class(config, task, pool, splits.labeled, targets),
    )
    strong = view_transform(strong_view(config))
    weak = weak_view()
    labeled_function: Callable[..., Any] | None = None
    unlabeled_function: Callable[..., Any]
    if task == "segmentation":  # labeled and unlabeled items: the same geometry, with the padding marked
        labeled_transform: Any = None
        labeled_function = unlabeled_function = PaddingAware(segmentation_train_transform(cfg.image_size))
    else:
        chosen = strong if config.classification.labeled_augmentation == "strong" else weak
        labeled_transform, unlabeled_function = JointView(v2.Identity(), chosen), ImageTransform(weak)
    unlabeled_item_functions: dict[str, Callable[..., Any]] = {
        "unlabeled": unlabeled_function,
        "unlabeled-views": MultiView(strong, n_views=2),
        "unlabeled-weak-strong": MultiView([weak, strong]),
    }
    balanced_transform: Any = JointView(v2.Identity(), strong)
    if batched:  # the loader yields the decoded images
        labeled_transform = balanced_transform = None
        unlabeled_item_functions = {stream: _decoded for stream in unlabeled_item_functions}
    labeled: Dataset[Any] = Subset(reader(cfg, cfg.train_split, transform=labeled_transform), splits.labeled)
    if labeled_function is not None:
        labeled = MappedDataset(labeled, labeled_function)
    loaders: dict[str, DataLoader[Any]] = {}
    unlabeled_count = 0
    steps = max(1, len(splits.labeled) // cfg.batch_size)
    for stream in streams:
        if stream == "labeled":
            loaders[stream] = _shuffled_loader(labeled, cfg, cfg.batch_size, config.seed)
            steps = len(loaders[stream])
        elif stream in ("balanced", "labeled-balanced"):
            sampler = ClassBalancedBatchSampler(
                targets, config.classification.contrastive_batch_images_per_class, seed=config.seed, num_batches=steps
            )
            transform = balanced_transform if stream == "balanced" else labeled_transform
            balanced_labeled = Subset(reader(cfg, cfg.train_split, transform=transform), splits.labeled)
            loaders[stream] = DataLoader(
                ItemSeeded(balanced_labeled, config.seed + 1),
                batch_sampler=EpochKeyedBatches(sampler),
                num_workers=cfg.num_workers,
                pin_memory=PIN_MEMORY,
            )
        elif stream in unlabeled_item_functions:
            images = MappedDataset(unlabeled_images(config, splits), unlabeled_item_functions[stream])
            unlabeled_count = max(unlabeled_count, len(images))
            loaders[stream] = cycling_loader(
                images, cfg, batch_size=cfg.unlabeled_batch_size, steps=steps, seed=config.seed + 2
            )
        else:
            raise ValueError(f"stream {stream!r} is not one of {list(get_args(Stream))}")
    val = make_loader(Subset(pool, splits.val), cfg, batch_size=cfg.batch_size) if splits.val else None
    seen = {"labeled": len(splits.labeled) + len(splits.val), "unlabeled": unlabeled_count}
    return RunData(CombinedLoader(loaders, mode="min_size"), val, splits.test, test_split_name(cfg), classes, seen)


def build_eval_dataset(config: RunConfig, split: str | None) -> tuple[Dataset[Any], list[str], str]:
    """The dataset ``evaluate`` scores: the run's own test set, or the reader's ``split`` when one is named."""
    cfg = config.data
    if split is None:
        pool = reader(cfg, cfg.train_split)
        splits = split_indices(cfg, pool, lambda: reader(cfg, cfg.eval_split))
        return splits.test, splits.class_names, test_split_name(cfg)
    dataset = reader(cfg, split)
    return dataset, list(dataset.class_names), split


def _shuffled_loader(dataset: Dataset[Any], cfg: DataConfig, batch_size: int, seed: int) -> DataLoader[Any]:
    """A training loader shuffled by (seed, epoch).

    A last batch of one image breaks BatchNorm (and SK attention), so the remainder is dropped when there is a
    full batch.
    """
    return make_loader(
        dataset,
        cfg,
        batch_size=batch_size,
        shuffle_seed=seed,
        drop_last=len(dataset) > batch_size,  # type: ignore[arg-type]
    )


def cycling_loader(
    dataset: Dataset[Any], cfg: DataConfig, *, batch_size: int, steps: int, seed: int
) -> DataLoader[Any]:
    """Loader of exactly ``steps`` random batches (drawn with replacement), to ride along a labeled stream.

    Secondary streams (unlabeled images, class-balanced pairs) must neither cut an epoch short nor stretch it:
    the labeled stream defines the epoch, as in paper 002's training loop.
    """
    sampler = EpochSeededSampler(len(dataset), seed, num_samples=steps * batch_size)  # type: ignore[arg-type]
    return DataLoader(
        ItemSeeded(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=True,
        pin_memory=PIN_MEMORY,
    )


def make_loader(
    dataset: Dataset[Any],
    cfg: DataConfig,
    *,
    batch_size: int,
    shuffle_seed: int | None = None,
    drop_last: bool = False,
) -> DataLoader[Any]:
    """DataLoader with the config's workers; shuffled by (seed, epoch) when ``shuffle_seed`` is given.

    Workers are not persistent: each epoch's workers are seeded afresh from the epoch seed, which is what
    makes a resumed run exact.
    """
    if shuffle_seed is None:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            num_workers=cfg.num_workers,
            pin_memory=PIN_MEMORY,
        )
    return DataLoader(
        ItemSeeded(dataset, shuffle_seed),
        batch_size=batch_size,
        sampler=EpochSeededSampler(len(dataset), shuffle_seed),  # type: ignore[arg-type]
        drop_last=drop_last,
        num_workers=cfg.num_workers,
        pin_memory=PIN_MEMORY,
    )
