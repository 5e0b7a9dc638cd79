"""The paired-folder reader against the 1,000 real 256-px AI4Mars pairs."""

import numpy as np
import torch
from PIL import Image

from marsvision.data import PairedFolder, build_dataset, detect_format


def test_1000_pairs_with_grayscale_images(paired_256):
    dataset = PairedFolder(paired_256)
    assert len(dataset) == 1000 and dataset.unpaired_images == []
    assert detect_format(paired_256) == "paired-folder"
    item = dataset[0]
    assert item["image"].shape == (1, 256, 256) and item["label"].shape == (256, 256)
    assert item["id"] == sorted(p.stem for p in (paired_256 / "labels").glob("*.png"))[0]
    times = dataset.acquisition_times
    assert times is not None and len(times) == 1000


def test_label_histogram_matches_an_independent_count(paired_256):
    expected = np.zeros(256, np.int64)
    for path in sorted((paired_256 / "labels").glob("*.png")):
        expected += np.bincount(np.array(Image.open(path)).ravel(), minlength=256)
    assert set(np.flatnonzero(expected)) <= {0, 1, 2, 3, 255}
    dataset = build_dataset("paired-folder", root=paired_256)
    found = np.zeros(256, np.int64)
    for index in range(len(dataset)):
        found += np.bincount(dataset[index]["label"].numpy().ravel(), minlength=256)
    assert np.array_equal(found, expected)
    assert expected.sum() == 1000 * 256 * 256


def test_rgb_jpegs_read_as_gray_match_pil_luma(paired_256):
    dataset = PairedFolder(paired_256, image_size=128)
    path = dataset.samples[7].image
    expected = np.array(Image.open(path).convert("L").resize((128, 128), Image.Resampling.BILINEAR)) / 255.0
    assert np.allclose(dataset[7]["image"][0].numpy(), expected, atol=1e-6)
    assert dataset[7]["label"].dtype == torch.int64
