"""Turn a :class:`DataConfig` into the datasets and loaders a task needs: train, validation, test, unlabeled.

Split policy, in order: the test set is the official evaluation split, or ``test_holdout`` images held out of
the training split, or the late part of a chronological split; the validation set (early stopping and
tuning only) is ``val_fraction`` of what remains; the labeled subset is a nested ``label_fraction`` of the
rest, drawn with ``fraction_seed``; the remainder is the unlabeled pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from marsvision.data.registry import build_dataset
from marsvision.data.samplers import ClassBalancedBatchSampler
from marsvision.data.splits import chronological_split, complement_indices, holdout_split, nested_fraction_indices
from marsvision.data.transforms import segmentation_train_transform
from marsvision.data.views import JointView, MultiView, semi_supervised_views, simclr_view_transform
from marsvision.data.wrappers import LabelDropped, MappedDataset
from marsvision.training.config import DataConfig, RunConfig
from marsvision.training.reproducibility import EpochKeyedBatches, EpochSeededSampler, ItemSeeded

PIN_MEMORY = torch.cuda.is_available()
"""Pinned host memory speeds up copies to a GPU and only costs memory without one."""
SHARED_DATA_ENV = "MARSVISION_SHARED_DATA"
DEFAULT_SHARED_DATA = "../shared/data"


def resolve_root(root: str) -> str:
    """Expand ``{shared}`` (the folder of shared real data, $MARSVISION_SHARED_DATA) and ``~`` in a root."""
    shared = os.environ.get(SHARED_DATA_ENV, DEFAULT_SHARED_DATA)
    return str(Path(root.replace("{shared}", shared)).expanduser())


def reader(cfg: DataConfig, split: str, transform: Callable[..., Any] | None = None, root: str | None = None) -> Any:
    """The registered reader of ``cfg.dataset`` for ``split``, with only the options that reader takes."""
    kwargs: dict[str, Any] = {
        "root": resolve_root(root or cfg.root),
        "image_size": cfg.image_size,
        "preprocess": cfg.preprocess,
        "channels": cfg.channels,
        "cache_dir": cfg.cache_dir,
    }
    if transform is not None:
        kwargs["transform"] = transform
    if cfg.dataset == "ai4mars":
        kwargs.update(split=split, rover=cfg.rover, test_agreement=cfg.test_agreement, class_mode=cfg.class_mode)
    elif cfg.dataset == "paired-folder":
        kwargs.update(class_mode=cfg.class_mode)
    elif cfg.dataset in ("msl-v1", "msl-v2.1"):
        kwargs.update(split=split, reshuffle_trainval=cfg.reshuffle_trainval)
        if cfg.dataset == "msl-v2.1":
            kwargs["drop_augmented"] = cfg.drop_augmented
    return build_dataset(cfg.dataset, **kwargs)


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
    unlabeled: list[int]
    val: list[int]
    test: Dataset[Any]
    class_names: list[str]


def split_indices(cfg: DataConfig, pool: Any, eval_reader: Callable[[], Any]) -> Splits:
    """Apply the split policy of this module's docstring to ``pool`` (the training split's reader)."""
    indices = list(range(len(pool)))
    if cfg.test_holdout > 0:
        kept, held_out = holdout_split(len(pool), cfg.test_holdout, seed=cfg.fraction_seed)
        indices, test = kept, Subset(pool, held_out)
    elif cfg.chronological is not None:
        if pool.acquisition_times is None:
            raise ValueError(f"{cfg.root}: chronological split needs acquisition times in the file names")
        early, late = chronological_split(pool.acquisition_times, fraction=cfg.chronological)
        indices, test = early, Subset(pool, late)
    else:
        test = eval_reader()
    val: list[int] = []
    if cfg.val_fraction > 0:
        kept_positions, val_positions = holdout_split(
            len(indices), max(1, round(cfg.val_fraction * len(indices))), seed=cfg.fraction_seed + 1
        )
        val = [indices[i] for i in val_positions]
        indices = [indices[i] for i in kept_positions]
    chosen = nested_fraction_indices(
        len(indices),
        fraction=None if cfg.label_count else cfg.label_fraction,
        count=cfg.label_count,
        seed=cfg.fraction_seed,
    )
    labeled = [indices[i] for i in chosen]
    unlabeled = [indices[i] for i in complement_indices(len(indices), chosen)]
    return Splits(labeled, unlabeled, val, test, list(pool.class_names))


@dataclass
class SegmentationData:
    """Datasets of a segmentation run."""

    class_names: list[str]
    train: Dataset[Any]
    val: Dataset[Any] | None
    test: Dataset[Any]
    unlabeled: Dataset[Any]


def build_segmentation_data(config: RunConfig) -> SegmentationData:
    """Labeled (augmented), validation, test and unlabeled sets for fine-tuning or semi-supervised training."""
    cfg = config.data
    pool = reader(cfg, cfg.train_split)
    augmented = reader(cfg, cfg.train_split, transform=segmentation_train_transform(cfg.image_size))
    splits = split_indices(cfg, pool, lambda: reader(cfg, cfg.eval_split))
    unlabeled_indices = splits.unlabeled or splits.labeled
    return SegmentationData(
        class_names=splits.class_names,
        train=Subset(augmented, splits.labeled),
        val=Subset(pool, splits.val) if splits.val else None,
        test=splits.test,
        unlabeled=LabelDropped(Subset(augmented, unlabeled_indices)),
    )


def build_pretraining_data(config: RunConfig) -> Dataset[Any]:
    """Unlabeled images of the training split (or ``unlabeled_root``), each item with two SimCLR views."""
    cfg = config.data
    if cfg.dataset == "unlabeled-folder" or cfg.unlabeled_root:
        images: Dataset[Any] = build_dataset(
            "unlabeled-folder",
            root=resolve_root(cfg.unlabeled_root or cfg.root),
            image_size=cfg.image_size,
            preprocess=cfg.preprocess,
            channels=cfg.channels,
            cache_dir=cfg.cache_dir,
        )
    else:
        images = LabelDropped(reader(cfg, cfg.train_split))
    views = simclr_view_transform(
        config.simclr.crop_size or cfg.image_size,
        channels=cfg.channels,
        strength=config.simclr.jitter_strength,
        crop_scale=(config.simclr.crop_scale_min, 1.0),
        blur_prob=config.simclr.blur_probability,
    )
    return MappedDataset(images, MultiView(views, n_views=2))


@dataclass
class ClassificationData:
    """Datasets and the combined per-step loaders of a classification run."""

    class_names: list[str]
    class_ids: list[int]
    samples_per_class: list[int]
    train_loaders: CombinedLoader
    val: Dataset[Any] | None
    test: Dataset[Any]


def build_classification_data(config: RunConfig) -> ClassificationData:
    """The three streams of paper 002 (labeled, class-balanced pairs, unlabeled two-view) for the chosen loss."""
    from marsvision.training.classification import streams_for

    cfg = config.data
    augment = semi_supervised_views(cfg.image_size, channels=cfg.channels)
    pool = reader(cfg, cfg.train_split)
    augmented = reader(cfg, cfg.train_split, transform=JointView(v2.Identity(), augment))  # image-only augmentation
    splits = split_indices(cfg, pool, lambda: reader(cfg, cfg.eval_split))
    targets = [pool.targets[i] for i in splits.labeled]
    samples_per_class = [targets.count(c) for c in range(len(splits.class_names))]
    labeled = Subset(augmented, splits.labeled)
    steps = max(1, len(labeled) // cfg.batch_size)
    loaders: dict[str, DataLoader[Any]] = {
        "labeled": make_loader(
            labeled,
            cfg,
            batch_size=cfg.batch_size,
            shuffle_seed=config.seed,
            drop_last=len(labeled) > cfg.batch_size,
        )
    }
    streams = streams_for(config.classification.loss)
    if "balanced" in streams:
        sampler = ClassBalancedBatchSampler(
            targets,
            config.classification.contrastive_batch_images_per_class,
            seed=config.seed,
            num_batches=steps,
        )
        loaders["balanced"] = DataLoader(
            ItemSeeded(labeled, config.seed + 1),
            batch_sampler=EpochKeyedBatches(sampler),
            num_workers=cfg.num_workers,
            pin_memory=PIN_MEMORY,
        )
    if "unlabeled" in streams:
        if cfg.unlabeled_root:
            unlabeled_images: Dataset[Any] = build_dataset(
                "unlabeled-folder",
                root=resolve_root(cfg.unlabeled_root),
                image_size=cfg.image_size,
                preprocess=cfg.preprocess,
                channels=cfg.channels,
                cache_dir=cfg.cache_dir,
            )
        else:
            unlabeled_images = LabelDropped(Subset(pool, splits.unlabeled or splits.labeled))
        two_views = MappedDataset(unlabeled_images, MultiView(augment, n_views=2))
        loaders["unlabeled"] = cycling_loader(
            two_views, cfg, batch_size=cfg.unlabeled_batch_size, steps=steps, seed=config.seed + 2
        )
    return ClassificationData(
        class_names=splits.class_names,
        class_ids=list(getattr(pool, "class_ids", range(len(splits.class_names)))),
        samples_per_class=samples_per_class,
        train_loaders=CombinedLoader(loaders, mode="min_size"),
        val=Subset(pool, splits.val) if splits.val else None,
        test=splits.test,
    )


def build_eval_dataset(config: RunConfig, split: str | None) -> tuple[Dataset[Any], list[str], str]:
    """The dataset ``evaluate`` scores: the run's own test set, or the reader's ``split`` when one is named."""
    cfg = config.data
    if split is None:
        pool = reader(cfg, cfg.train_split)
        splits = split_indices(cfg, pool, lambda: reader(cfg, cfg.eval_split))
        return splits.test, splits.class_names, test_split_name(cfg)
    dataset = reader(cfg, split)
    return dataset, list(dataset.class_names), split


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
