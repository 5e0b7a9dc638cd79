"""The view augmentations of a run, from its config, and their batched form on the training device.

Two families of views: SimCLR's (pretraining, ``simclr.*``) and paper 002's strong views (classification,
``classification.strong_*``), each one :class:`~marsvision.data.views.ViewAugmentation`. The data loader makes
them image by image (``training/data.py``), unless ``simclr.batched_views`` or ``classification.batched_views``
is on: then the loader yields the decoded images and :class:`StreamViews` gives each stream of a training batch
what the per-image item functions would have given it, a whole batch at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from marsvision.data.views import FLIP_PROBABILITY, ViewAugmentation
from marsvision.training.batch_views import BatchViews, random_horizontal_flip
from marsvision.training.config import RunConfig


def simclr_view(config: RunConfig) -> ViewAugmentation:
    """SimCLR's view (Chen et al. 2020, appendix A): random resized crop, horizontal flip, colour distortion, blur."""
    simclr = config.simclr
    return ViewAugmentation(
        size=simclr.crop_size or config.data.image_size,
        channels=config.data.channels,
        crop_scale=(simclr.crop_scale_min, 1.0),
        horizontal_flip_probability=FLIP_PROBABILITY,
        vertical_flip_probability=0.0,
        rotation_degrees=0.0,
        jitter_probability=simclr.jitter_probability,
        jitter_strength=simclr.jitter_strength,
        grayscale_probability=simclr.grayscale_probability,
        blur_probability=simclr.blur_probability,
    )


def strong_view(config: RunConfig) -> ViewAugmentation:
    """Paper 002's strong view: flips, crop and resize, rotation, then colour jitter, desaturation and blur."""
    cls = config.classification
    return ViewAugmentation(
        size=config.data.image_size,
        channels=config.data.channels,
        crop_scale=(cls.strong_crop_scale_min, 1.0),
        horizontal_flip_probability=FLIP_PROBABILITY,
        vertical_flip_probability=FLIP_PROBABILITY,
        rotation_degrees=cls.strong_rotation_degrees,
        jitter_probability=cls.strong_jitter_probability,
        jitter_strength=cls.strong_jitter_strength,
        grayscale_probability=cls.strong_grayscale_probability,
        blur_probability=cls.strong_blur_probability,
    )


def batched_views(config: RunConfig, task: str) -> bool:
    """Whether the module, not the loader, makes this run's views (``simclr``/``classification.batched_views``)."""
    if task == "pretrain":
        return config.simclr.batched_views
    return task == "classification" and config.classification.batched_views


class StreamViews:
    """Augment a training batch ``{stream: batch}`` of decoded images as the per-image item functions would.

    ``simclr-views``: ``views`` = two SimCLR views; ``unlabeled-views``: two strong views;
    ``unlabeled-weak-strong``: a weak (flipped) and a strong view; ``balanced``: a strong ``image``;
    ``unlabeled``: a weak ``image``; ``labeled`` and ``labeled-balanced``: the ``image`` augmented as
    ``classification.labeled_augmentation`` says. Streams are drawn in the batch's order from one generator.
    """

    def __init__(self, config: RunConfig, task: str) -> None:
        if task == "pretrain":
            simclr = BatchViews(simclr_view(config))
            self.views: dict[str, list[Any]] = {"simclr-views": [simclr, simclr]}
            self.images: dict[str, Any] = {}
            return
        strong = BatchViews(strong_view(config))
        labeled = strong if config.classification.labeled_augmentation == "strong" else _weak
        self.views = {"unlabeled-views": [strong, strong], "unlabeled-weak-strong": [_weak, strong]}
        self.images = {"labeled": labeled, "labeled-balanced": labeled, "balanced": strong, "unlabeled": _weak}

    def __call__(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        out = dict(batch)
        for stream, items in batch.items():
            image = items["image"]
            if stream in self.views:
                out[stream] = {**items, "views": [augment(image, generator) for augment in self.views[stream]]}
            elif stream in self.images:
                out[stream] = {**items, "image": self.images[stream](image, generator)}
        return out


def _weak(images: Tensor, generator: torch.Generator) -> Tensor:
    """The weak view of a batch: a random horizontal flip per image (``data.views.weak_view``)."""
    return random_horizontal_flip(images, generator, FLIP_PROBABILITY)
