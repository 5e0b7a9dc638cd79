"""UniMatch's pieces that the registry-wide method test cannot see: padding never gets a pseudo label (in labeled
items too), strong views keep each pixel with its pseudo label, FixMatch's unlabeled stream pairs a weak and a
strong view."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.transforms import apply_joint, segmentation_train_transform
from marsvision.data.views import MultiView, PaddingAware
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.unimatch import UniMatchSegmentation


def test_padding_aware_marks_the_images_own_pixels():
    image = torch.rand(1, 8, 8) * 0.5 + 0.5  # never 0, so padding is recognisable
    crop = PaddingAware(v2.RandomCrop(12, pad_if_needed=True, fill=0.0))
    torch.manual_seed(0)
    item = crop({"image": image, "id": "x"})
    assert item["image"].shape == (1, 12, 12) and item["valid"].shape == (12, 12)
    assert item["valid"].sum() == 64
    assert torch.equal(item["valid"], item["image"][0] > 0)


def test_padding_aware_gives_a_labeled_item_the_same_geometry_and_marks_its_padding():
    image = torch.rand(1, 8, 8) * 0.5 + 0.5
    label = torch.randint(0, 4, (8, 8))
    label[:, :3] = IGNORE_INDEX  # pixels nobody labeled, inside the image
    crop = PaddingAware(segmentation_train_transform(12, scale=(0.5, 0.5), hflip=0.0))  # 8 → 6 px, padded to 12
    torch.manual_seed(0)
    item = crop({"image": image, "label": label, "id": "x"})
    assert item["image"].shape == (1, 12, 12) and item["label"].shape == item["valid"].shape == (12, 12)
    assert item["valid"].sum() == 36 and torch.equal(item["valid"], item["image"][0] > 0)
    assert bool((item["label"][~item["valid"]] == IGNORE_INDEX).all()), "padding is ignored by the loss"
    # the same draws without the mask channel give the same image and label (the mask costs no randomness)
    torch.manual_seed(0)
    plain_image, plain_label = apply_joint(segmentation_train_transform(12, scale=(0.5, 0.5), hflip=0.0), image, label)
    assert torch.equal(item["image"], plain_image) and torch.equal(item["label"], plain_label)
    unlabeled_inside = (item["label"] == IGNORE_INDEX) & item["valid"]
    assert unlabeled_inside.any(), "the mask tells unlabeled image pixels from padding"


def test_multiview_of_a_sequence_gives_one_view_per_transform():
    weak, strong = v2.Identity(), v2.Lambda(lambda x: 1 - x)
    item = MultiView([weak, strong])({"image": torch.full((1, 4, 4), 0.25), "id": "y"})
    assert [float(v.mean()) for v in item["views"]] == [0.25, 0.75]


def test_strong_views_keep_every_pixel_with_its_pseudo_label():
    config = load_config(
        None,
        [
            "method=seg-unimatch",
            "model.head=deeplabv3plus",
            "model.encoder=resnet18",
            "consistency.cutmix_probability=1",
        ],
    )
    module = UniMatchSegmentation(config, ClassInfo(["a", "b", "c", "d"]))
    torch.manual_seed(0)
    weak = torch.rand(4, 1, 16, 16)
    pseudo = (weak[:, 0] * 4).long().clamp(max=3)  # the label is a function of the pixel value
    pseudo[0, :2] = IGNORE_INDEX
    confidence = weak[:, 0].clone()
    images, labels, confidences = module.strong_view(weak, pseudo, confidence, torch.Generator().manual_seed(1))
    # before the photometric change, every pixel came from the image whose pseudo label it now carries
    from_partner = ~torch.isclose(confidences, confidence)
    assert from_partner.any() and (~from_partner).any(), "a box was pasted"
    expected = torch.where(from_partner, pseudo.roll(1, 0), pseudo)
    assert torch.equal(labels, expected)
    assert images.shape == weak.shape and float(images.min()) >= 0 and float(images.max()) <= 1
