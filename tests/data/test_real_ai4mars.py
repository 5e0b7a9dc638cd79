"""The AI4Mars reader against the real official-layout sample (16 complete tuples)."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from marsvision.data import Ai4Mars, DatasetError, detect_format


def _pairs(root):
    with open(root / "pairs.csv", newline="") as stream:
        return {row["id"]: row for row in csv.DictReader(stream)}


def test_sample_has_16_tuples_matching_the_manifest(official_sample):
    dataset = Ai4Mars(official_sample, split="train")
    pairs = _pairs(official_sample)
    assert len(dataset) == 16 and dataset.release == "0.1"
    assert sorted(dataset.ids) == sorted(pairs)
    for sample in dataset.samples:
        row = pairs[sample.id]
        assert sample.image == official_sample / row["image"]
        assert sample.label == official_sample / row["label"]
        assert sample.rover_mask == official_sample / row["rover_mask"]
        assert sample.range_mask == official_sample / row["range_mask"]
    # 20 train labels, 16 with an image: the other 4 are counted, not fatal.
    assert len(dataset.missing_images) == 4
    assert dataset.missing_masks == {"rover": 0, "range": 0}
    assert detect_format(official_sample) == "ai4mars"


def test_items_follow_the_item_convention(official_sample):
    dataset = Ai4Mars(official_sample)
    item = dataset[0]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 1024, 1024)
    assert float(item["image"].min()) >= 0.0 and float(item["image"].max()) <= 1.0
    assert item["label"].dtype == torch.int64 and item["label"].shape == (1024, 1024)
    assert item["id"] == dataset.ids[0]
    assert dataset.class_names == ("soil", "bedrock", "sand", "big rock") and dataset.num_classes == 4
    times = dataset.acquisition_times
    assert times is not None and len(times) == 16 and all(0 < t < 3 for t in times)  # landing site, sols 1-2


def test_paper6_puts_exactly_the_rover_mask_pixels_into_class_4(official_sample):
    dataset = Ai4Mars(official_sample, class_mode="paper6")
    assert dataset.class_names[4:] == ("rover", "background")
    checked_rover = 0
    for index in (0, 5, 11):
        sample = dataset.samples[index]
        rover = np.array(Image.open(sample.rover_mask)) == 1
        far = np.array(Image.open(sample.range_mask)) == 1
        raw = np.array(Image.open(sample.label))
        label = dataset[index]["label"].numpy()
        assert np.array_equal(label == 4, rover)
        assert np.array_equal(label == 5, far & ~rover)
        keep = ~rover & ~far
        assert np.array_equal(label[keep], raw[keep])
        checked_rover += int(rover.sum())
    assert checked_rover > 0


def test_terrain4_ignores_masked_pixels_and_unlabeled_mode_adds_a_class(official_sample):
    index = 3
    t4 = Ai4Mars(official_sample, class_mode="terrain4")
    sample = t4.samples[index]
    masked = (np.array(Image.open(sample.rover_mask)) == 1) | (np.array(Image.open(sample.range_mask)) == 1)
    label = t4[index]["label"].numpy()
    assert (label[masked] == 255).all()
    extra = Ai4Mars(official_sample, class_mode="paper6+unlabeled")
    assert extra.num_classes == 7 and extra.class_names[-1] == "unlabeled"
    label6 = extra[index]["label"].numpy()
    assert 255 not in np.unique(label6)
    assert np.array_equal(label6 == 6, (label == 255) & ~masked)


def test_paper000_preset_is_nearest_half_size_brightened(official_sample):
    dataset = Ai4Mars(official_sample, preprocess="paper000")
    item = dataset[2]
    raw = np.array(Image.open(dataset.samples[2].image), dtype=np.float64)
    # Nearest 1024 → 512 takes the pixel whose centre is nearest: index 2i + 1 (PIL convention).
    expected = np.clip(raw[1::2, 1::2] / 255.0 * 1.5, 0, 1)
    assert item["image"].shape == (1, 512, 512)
    assert np.allclose(item["image"][0].numpy(), expected, atol=1e-6)
    label = np.array(Image.open(dataset.samples[2].label))
    masked = dataset.read_label(2)
    assert item["label"].shape == (512, 512)
    assert np.array_equal(item["label"].numpy(), masked[1::2, 1::2])
    assert set(np.unique(label)) <= {0, 1, 2, 3, 255}


def test_channels_3_replicates_the_gray_channel(official_sample):
    item = Ai4Mars(official_sample, channels=3, image_size=64)[0]
    assert item["image"].shape == (3, 64, 64)
    assert torch.equal(item["image"][0], item["image"][1]) and torch.equal(item["image"][1], item["image"][2])


def test_test_split_without_images_is_an_empty_split_error(official_sample):
    with pytest.raises(DatasetError, match=r"split 'test' is empty.*20 labels have no image"):
        Ai4Mars(official_sample, split="test", test_agreement="min1")


def test_validate_finds_no_problem(official_sample):
    dataset = Ai4Mars(official_sample, class_mode="paper6")
    dataset.samples = dataset.samples[:3]
    assert dataset.validate() == []


def test_reading_with_a_cache_writes_nothing_into_the_real_folder(official_sample, tmp_path, snapshot):
    before = snapshot(official_sample)
    dataset = Ai4Mars(official_sample, class_mode="paper6", preprocess="paper000", cache_dir=tmp_path / "c")
    first = dataset[0]
    again = Ai4Mars(official_sample, class_mode="paper6", preprocess="paper000", cache_dir=tmp_path / "c")[0]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    assert snapshot(official_sample) == before
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 2
