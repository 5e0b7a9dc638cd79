"""The MSL surface v1 reader against the real train and val splits."""

import math

import numpy as np
import pytest

from marsvision.data import MSL_V1_NAMES, DatasetError, MslV1, detect_format, msl_v1_unlisted_images

# Per-class train/val counts from ../shared/data/README.md (class 22 'sun' has none).
README_COUNTS = {
    0: (30, 16), 1: (6, 4), 2: (15, 0), 3: (47, 45), 4: (19, 20), 5: (36, 470), 6: (4, 2), 7: (8, 4),
    8: (2343, 87), 9: (224, 75), 10: (165, 96), 11: (14, 0), 12: (32, 28), 13: (36, 0), 14: (101, 4),
    15: (85, 14), 16: (18, 20), 17: (73, 55), 18: (8, 12), 19: (12, 20), 20: (57, 0), 21: (166, 24),
    23: (178, 15), 24: (69, 629),
}  # fmt: skip


def test_split_sizes_classes_and_sols(msl_v1_real):
    train = MslV1(msl_v1_real, split="train")
    val = MslV1(msl_v1_real, split="val")
    assert (len(train), len(val)) == (3746, 1640)
    assert train.num_classes == 24 and 22 not in train.class_ids
    assert train.class_ids == tuple(c for c in range(25) if c != 22)
    assert train.class_names == tuple(n for i, n in enumerate(MSL_V1_NAMES) if i != 22)
    assert (min(train.acquisition_times), max(train.acquisition_times)) == (3, 180)
    assert (min(val.acquisition_times), max(val.acquisition_times)) == (182, 564)
    assert detect_format(msl_v1_real) == "msl-v1"


def test_contiguous_targets_map_back_to_the_readme_counts(msl_v1_real):
    for split, column in (("train", 0), ("val", 1)):
        dataset = MslV1(msl_v1_real, split=split)
        counts = np.bincount(dataset.targets, minlength=24)
        for contiguous, official in enumerate(dataset.class_ids):
            assert counts[contiguous] == README_COUNTS[official][column], (split, official)


def test_items_are_rgb_even_for_grayscale_files(msl_v1_real):
    dataset = MslV1(msl_v1_real, split="train", image_size=64)
    from PIL import Image

    gray = next(i for i, s in enumerate(dataset.samples[:400]) if Image.open(s.image).mode == "L")
    item = dataset[gray]
    assert item["image"].shape == (3, 64, 64) and item["label"].ndim == 0
    assert int(item["label"]) == dataset.targets[gray]
    native = MslV1(msl_v1_real, split="train")[0]["image"]
    assert native.shape[0] == 3 and 85 <= native.shape[1] <= 279 and native.shape[2] in (255, 256)


def test_reshuffle_keeps_sizes_and_the_pool(msl_v1_real):
    train = MslV1(msl_v1_real, split="train", reshuffle_trainval=1)
    val = MslV1(msl_v1_real, split="val", reshuffle_trainval=1)
    assert (len(train), len(val)) == (3746, 1640)
    original = set(MslV1(msl_v1_real, "train").ids) | set(MslV1(msl_v1_real, "val").ids)
    assert set(train.ids) | set(val.ids) == original and not set(train.ids) & set(val.ids)
    assert max(train.acquisition_times) > 182  # val-era images now in train
    assert math.isclose(len(train) / (len(train) + len(val)), 3746 / 5386)


def test_missing_test_list_and_unlisted_images(msl_v1_real):
    with pytest.raises(DatasetError, match=r"test-calibrated-shuffled\.txt"):
        MslV1(msl_v1_real, split="test")
    assert len(msl_v1_unlisted_images(msl_v1_real)) == 46
