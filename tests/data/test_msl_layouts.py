"""MSL v1 on synthetic data and MSL v2.1 on a generated tree."""

import numpy as np
import pytest
from PIL import Image

from marsvision.data import DatasetError, MslV1, MslV21, detect_format, msl_v1_unlisted_images

V21_NAMES = ["Arm cover", "Other rover part", "Artifact"]


def test_synthetic_v1_round_trip(synth_msl):
    splits = {s: MslV1(synth_msl, split=s, image_size=32) for s in ("train", "val", "test")}
    assert sum(len(d) for d in splits.values()) == 80
    assert set(splits["train"].targets) == set(range(24))  # every class in train
    assert max(splits["train"].acquisition_times) <= min(splits["val"].acquisition_times)
    assert max(splits["val"].acquisition_times) <= min(splits["test"].acquisition_times)
    item = splits["train"][0]
    assert item["image"].shape == (3, 32, 32)
    assert len(msl_v1_unlisted_images(synth_msl)) == 2
    assert detect_format(synth_msl) == "msl-v1"


def _write_v21(root, augmented=True):
    images = root / "images"
    images.mkdir(parents=True)
    (root / "class_map.csv").write_text("".join(f"{i}, {n} \n" for i, n in enumerate(V21_NAMES)))
    lines = {"train": [], "val": [], "test": []}
    rng = np.random.default_rng(0)
    for index in range(9):
        name = f"{100 + index:04d}MR0005780000102730E01_DRCL"
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(images / f"{name}.jpg")
        split = ("train", "train", "train", "train", "val", "val", "test", "test", "test")[index]
        lines[split].append(f"{name}.jpg {index % 3}")
        if augmented and split == "train":
            for suffix in ("fh", "r90"):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(images / f"{name}-{suffix}.jpg")
                lines["train"].append(f"{name}-{suffix}.jpg {index % 3}")
    for split, entries in lines.items():
        (root / f"{split}-set-v2.1.txt").write_text("\n".join(entries) + "\n")


def test_v21_reader_flags_and_drops_augmented_copies(tmp_path):
    root = tmp_path / "msl-labeled-data-set-v2.1"
    _write_v21(root)
    train = MslV21(root, split="train")
    assert len(train) == 12 and sum(train.augmented) == 8
    assert train.class_names == tuple(V21_NAMES)  # spaces stripped
    assert len(MslV21(root, split="train", drop_augmented=True)) == 4
    assert len(MslV21(root, split="val")) == 2 and len(MslV21(root, split="test")) == 3
    assert train.acquisition_times[:1] == [100.0]
    assert detect_format(root) == "msl-v2.1"
    assert train[0]["image"].shape == (3, 20, 20)


def test_v21_inside_a_zip_folder_with_macosx_debris(tmp_path):
    _write_v21(tmp_path / "unzipped" / "msl-labeled-data-set-v2.1", augmented=False)
    (tmp_path / "unzipped" / "__MACOSX").mkdir()
    dataset = MslV21(tmp_path / "unzipped", split="train")
    assert len(dataset) == 4


def test_reshuffled_v21_keeps_sizes(tmp_path):
    _write_v21(tmp_path / "v21", augmented=False)
    train = MslV21(tmp_path / "v21", split="train", reshuffle_trainval=3)
    val = MslV21(tmp_path / "v21", split="val", reshuffle_trainval=3)
    assert (len(train), len(val)) == (4, 2)
    assert len(set(train.ids) | set(val.ids)) == 6


def test_v21_class_id_outside_the_class_map(tmp_path):
    root = tmp_path / "v21"
    _write_v21(root, augmented=False)
    (root / "val-set-v2.1.txt").write_text("0104MR0005780000102730E01_DRCL.jpg 7\n")
    with pytest.raises(DatasetError, match=r"val-set-v2.1.txt: line 1: class id 7"):
        MslV21(root, split="val")


def test_classification_transform_keeps_the_scalar_label(synth_msl):
    from torchvision.transforms import v2

    dataset = MslV1(synth_msl, split="val", transform=v2.Resize((20, 20)))
    item = dataset[0]
    assert item["image"].shape == (3, 20, 20)
    assert item["label"].ndim == 0 and int(item["label"]) == dataset.targets[0]
