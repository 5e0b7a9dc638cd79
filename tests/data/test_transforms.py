"""Joint transforms, contrastive views and MultiView."""

import pytest
import torch

from marsvision.data import (
    LabelDropped,
    MultiView,
    PairedFolder,
    ViewAugmentation,
    apply_joint,
    segmentation_train_transform,
    view_transform,
)
from marsvision.data.wrappers import MappedDataset


def _view(size: int, channels: int = 1, paper002: bool = False) -> ViewAugmentation:
    """SimCLR's view at the config's defaults, or paper 002's strong view (vertical flips and rotation too)."""
    return ViewAugmentation(
        size=size,
        channels=channels,
        crop_scale=(0.3, 1.0) if paper002 else (0.2, 1.0),
        horizontal_flip_probability=0.5,
        vertical_flip_probability=0.5 if paper002 else 0.0,
        rotation_degrees=30.0 if paper002 else 0.0,
        jitter_probability=0.8,
        jitter_strength=0.5,
        grayscale_probability=0.2,
        blur_probability=0.5,
    )


def _halves(size=32):
    image = torch.zeros(1, size, size)
    image[:, :, : size // 2] = 1.0
    label = torch.zeros(size, size, dtype=torch.int64)
    label[:, : size // 2] = 1
    return image, label


def test_segmentation_transform_pads_labels_with_255_and_keeps_values():
    torch.manual_seed(0)
    transform = segmentation_train_transform(48, scale=(0.5, 0.6))  # always smaller than 48: padding needed
    image, label = _halves(64)
    label[0, 0] = 3
    out_image, out_label = apply_joint(transform, image, label)
    assert out_image.shape == (1, 48, 48) and out_label.shape == (48, 48)
    assert out_label.dtype == torch.int64 and type(out_label) is torch.Tensor
    assert set(out_label.unique().tolist()) <= {0, 1, 3, 255} and 255 in out_label
    assert (out_image[:, out_label == 255] == 0).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_simclr_and_semi_supervised_views_keep_channels_and_range(channels):
    torch.manual_seed(1)
    image = torch.rand(channels, 40, 40)
    for transform in (view_transform(_view(24, channels)), view_transform(_view(24, channels, paper002=True))):
        view = transform(image)
        assert view.shape == (channels, 24, 24)
        assert float(view.min()) >= 0.0 and float(view.max()) <= 1.0


def test_multiview_gives_different_views_of_one_item():
    torch.manual_seed(2)
    multiview = MultiView(view_transform(_view(16)), n_views=3)
    item = multiview({"image": torch.rand(1, 32, 32), "id": "x"})
    assert len(item["views"]) == 3 and all(v.shape == (1, 16, 16) for v in item["views"])
    assert not torch.equal(item["views"][0], item["views"][1])


def test_dataset_transform_and_wrappers(synth_paired):
    dataset = PairedFolder(synth_paired, transform=segmentation_train_transform(32))
    item = dataset[0]
    assert item["image"].shape == (1, 32, 32) and item["label"].shape == (32, 32)
    unlabeled = LabelDropped(torch.utils.data.Subset(dataset, [1, 2]))
    assert len(unlabeled) == 2 and "label" not in unlabeled[0]
    views = MappedDataset(LabelDropped(dataset), MultiView(view_transform(_view(16))))
    assert len(views[3]["views"]) == 2


def test_bad_view_arguments_raise():
    with pytest.raises(ValueError, match="channels"):
        _view(16, channels=2)
    with pytest.raises(ValueError, match="crop_scale"):
        ViewAugmentation(**{**_view(16).__dict__, "crop_scale": (0.5, 0.2)})
    with pytest.raises(ValueError):
        MultiView(lambda x: x, n_views=0)
