"""Table 8 augmentation baselines on labeled images: images and ground truth are mixed together."""

from __future__ import annotations

import pytest
import torch

from marsvision.data.classes import IGNORE_INDEX
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.registry import method_class
from marsvision.training.seg_aug_baselines import AugmentedSegmentation

TINY = ["model.encoder=r18_0.25x_sk0", "segbaseline.cutout_ratio=0.5", "segbaseline.cutmix_area=0.25"]


def _module(method: str, extra: list[str] | None = None) -> AugmentedSegmentation:
    module = method_class(method)(load_config(None, [*TINY, *(extra or [])]), ClassInfo(["a", "b", "c", "d"]))
    assert isinstance(module, AugmentedSegmentation)
    return module


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Four 8×8 images whose pixel value encodes (image, label): 20·image + label + 1 (no pixel is 0); the first row
    is unlabeled (value 20·image + 10)."""
    labels = torch.randint(0, 4, (4, 8, 8), generator=torch.Generator().manual_seed(0))
    labels[:, 0, :] = IGNORE_INDEX
    images = (20 * torch.arange(4).view(4, 1, 1) + labels.clamp(max=9) + 1).float().unsqueeze(1)  # (4, 1, 8, 8)
    return images, labels


def test_methods_draw_only_the_labeled_stream() -> None:
    for name in ("seg-cutout-aug", "seg-cutmix-aug", "seg-classmix-aug", "seg-reco-supervised"):
        assert method_class(name).streams == ("labeled",)


def test_cutout_blanks_a_box_and_drops_its_labels() -> None:
    images, labels = _batch()
    mixed, mixed_labels = _module("seg-cutout-aug").augment(images, labels, torch.Generator().manual_seed(1))
    blanked = mixed[:, 0] == 0
    assert (blanked.sum(dim=(1, 2)) == 16).all()  # a 4 × 4 box per image
    assert (mixed_labels[blanked] == IGNORE_INDEX).all()
    kept = ~blanked
    assert torch.equal(mixed[:, 0][kept], images[:, 0][kept]) and torch.equal(mixed_labels[kept], labels[kept])


@pytest.mark.parametrize("method", ["seg-cutmix-aug", "seg-classmix-aug"])
def test_mixing_keeps_every_pixel_with_its_own_label(method: str) -> None:
    images, labels = _batch()
    mixed, mixed_labels = _module(method).augment(images, labels, torch.Generator().manual_seed(2))
    source = (mixed[:, 0] // 20).long()  # which image each pixel came from
    value_label = (mixed[:, 0] % 20).long() - 1
    labeled = mixed_labels != IGNORE_INDEX
    assert torch.equal(value_label[labeled], mixed_labels[labeled])  # image and label moved together
    own = torch.arange(4).view(4, 1, 1)
    partner = own.roll(1, dims=0)  # position i: image i pasted onto image i − 1
    assert ((source == own) | (source == partner)).all()
    assert (source == partner).any() and (source == own).any()
    if method == "seg-classmix-aug":
        # image i keeps the pixels of whole classes of its own ground truth, half of them (rounded up)
        for i in range(4):
            pasted = source[i] == i
            classes = labels[i][pasted].unique()
            assert torch.equal(pasted, torch.isin(labels[i], classes))
            present = labels[i][labels[i] != IGNORE_INDEX].unique()
            assert len(classes) == (len(present) + 1) // 2


def test_reco_supervised_adds_a_weighted_regional_contrast() -> None:
    method = method_class("seg-reco-cutmix-aug")
    assert method.loss_weights == {"regional_contrast": "segbaseline.reco_weight"}
    assert method.augmentation == "cutmix" and method.with_embedding
