"""Every kind of bad input gets a DatasetError naming the file and the problem; nothing is written."""

import shutil

import numpy as np
import pytest
from PIL import Image

from marsvision.data import (
    DATASETS,
    Ai4Mars,
    DatasetError,
    MslV1,
    PairedFolder,
    UnlabeledFolder,
    build_dataset,
    detect_format,
)
from marsvision.data.errors import UnknownSplitError


@pytest.fixture
def paired_copy(synth_paired, tmp_path):
    copy = tmp_path / "paired"
    shutil.copytree(synth_paired, copy)
    return copy


@pytest.fixture
def msl_copy(synth_msl, tmp_path):
    copy = tmp_path / "msl"
    shutil.copytree(synth_msl, copy)
    return copy


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_root(name, tmp_path):
    with pytest.raises(DatasetError, match="dataset root does not exist") as info:
        build_dataset(name, root=tmp_path / "nowhere")
    assert info.value.path == tmp_path / "nowhere"


def test_wrong_layout_says_what_was_expected_and_found(synth_paired, synth_ai4mars):
    with pytest.raises(DatasetError, match=r"expected AI4Mars release 0.1 .*found images/, labels/"):
        Ai4Mars(synth_paired)
    with pytest.raises(DatasetError, match=r"expected MSL surface v1 .*found msl/"):
        MslV1(synth_ai4mars)
    with pytest.raises(DatasetError, match=r"expected a paired folder with images/ and labels/; found msl/"):
        PairedFolder(synth_ai4mars)


def test_empty_split(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="split 'all' is empty"):
        PairedFolder(tmp_path)
    with pytest.raises(DatasetError, match="split 'all' is empty"):
        UnlabeledFolder(tmp_path)


def test_label_values_outside_the_class_set(paired_copy):
    dataset = PairedFolder(paired_copy)
    label_path = dataset.samples[2].label
    bad = np.array(Image.open(label_path))
    bad[0, :3] = [7, 9, 9]
    Image.fromarray(bad).save(label_path)
    with pytest.raises(DatasetError, match=r"label values \[7, 9\] are outside the class set") as info:
        dataset[2]
    assert info.value.path == label_path
    assert any(str(label_path) in problem for problem in dataset.validate())


def test_image_label_size_mismatch(paired_copy):
    dataset = PairedFolder(paired_copy)
    label_path = dataset.samples[0].label
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(label_path)
    with pytest.raises(DatasetError, match=r"label size 40×32 differs from image size 48×48") as info:
        dataset[0]
    assert info.value.path == label_path


def test_corrupt_jpeg(paired_copy):
    dataset = PairedFolder(paired_copy)
    image_path = dataset.samples[1].image
    data = image_path.read_bytes()
    image_path.write_bytes(data[: len(data) // 3])  # truncated: the header survives, the pixels do not
    with pytest.raises(DatasetError, match="cannot decode image") as info:
        dataset[1]
    assert info.value.path == image_path


def test_rgb_label(paired_copy):
    dataset = PairedFolder(paired_copy)
    label_path = dataset.samples[0].label
    Image.open(label_path).convert("RGB").save(label_path)
    with pytest.raises(DatasetError, match="found mode RGB"):
        dataset[0]


def test_split_list_line_that_does_not_parse(msl_copy):
    list_path = msl_copy / "train-calibrated-shuffled.txt"
    lines = list_path.read_text().splitlines()
    lines[2] = "calibrated/this-line-has-no-class-id.JPG"
    list_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"train-calibrated-shuffled.txt: line 3: cannot parse"):
        MslV1(msl_copy)


def test_split_list_path_escaping_the_root(msl_copy):
    list_path = msl_copy / "val-calibrated-shuffled.txt"
    list_path.write_text(list_path.read_text() + "../../etc/passwd 3\n")
    lines = len(list_path.read_text().splitlines())
    with pytest.raises(DatasetError, match=rf"line {lines}: path '../../etc/passwd' escapes the dataset root"):
        MslV1(msl_copy, split="val")


def test_listed_image_missing(msl_copy):
    first = (msl_copy / "test-calibrated-shuffled.txt").read_text().split()[0]
    (msl_copy / first).unlink()
    with pytest.raises(DatasetError, match=r"line \d+: image .* does not exist"):
        MslV1(msl_copy, split="test")


def test_class_file_line_that_does_not_parse(msl_copy):
    class_file = msl_copy / "msl_synset_words-indexed.txt"
    class_file.write_text(class_file.read_text() + "twenty-five extra\n")
    with pytest.raises(DatasetError, match=r"line 26: cannot parse"):
        MslV1(msl_copy)


def test_unlabeled_folder_skips_unreadable_files_by_name(paired_copy, caplog):
    (paired_copy / "images" / "broken.jpg").write_bytes(b"not a jpeg at all")
    truncated = sorted((paired_copy / "images").glob("NLA*.jpg"))[0]
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    dataset = UnlabeledFolder(paired_copy / "images")
    assert dataset.skipped == 1 and dataset.unreadable[0][0].endswith("broken.jpg")
    assert "broken.jpg" in caplog.text
    assert len(dataset) == 12
    item = dataset[0]  # the truncated file fails to decode: reported, the next one is returned
    assert item["id"] != truncated.name and "label" not in item
    assert dataset.skipped == 2 and any(name.endswith(truncated.name) for name, _ in dataset.unreadable)
    assert any(truncated.name in problem for problem in dataset.validate())


def test_detect_format_on_a_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="no known dataset layout"):
        detect_format(tmp_path)


def test_nothing_is_written_into_the_dataset_folder(synth_ai4mars, tmp_path, snapshot):
    from marsvision.data import inspect_dataset

    before = snapshot(synth_ai4mars)
    dataset = Ai4Mars(synth_ai4mars, class_mode="paper6", cache_dir=tmp_path / "cache", preprocess="paper000")
    for index in range(len(dataset)):
        dataset[index]
    dataset.validate()
    inspect_dataset(synth_ai4mars)
    assert snapshot(synth_ai4mars) == before
    with pytest.raises(DatasetError, match="must not lie inside the dataset folder"):
        Ai4Mars(synth_ai4mars, cache_dir=synth_ai4mars / "cache")


@pytest.mark.parametrize(
    ("reader", "fixture", "splits"),
    [
        (Ai4Mars, "synth_ai4mars", "train, test, chronological-early, chronological-late"),
        (MslV1, "synth_msl", "train, val, test"),
        (PairedFolder, "synth_paired", "all, train"),
        (UnlabeledFolder, "synth_paired", "all, train"),
    ],
)
def test_an_unknown_split_names_the_splits_there_are(reader, fixture, splits, request):
    with pytest.raises(UnknownSplitError) as info:
        reader(request.getfixturevalue(fixture), split="nope")
    assert str(info.value) == f"split 'nope' is not a split of this dataset; choose one of {splits}"
    assert str(UnknownSplitError("nope", info.value.accepted, key="--split")).startswith("--split 'nope' is not")
