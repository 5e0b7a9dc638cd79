"""Synthetic generator determinism and speed, and dataset inspection."""

import json
import re
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from marsvision.data import (
    DatasetError,
    inspect_dataset,
    synthesize_ai4mars,
    synthesize_msl_v1,
)
from marsvision.data.names import MSL_MASTCAM_PATTERN, MSL_NAVCAM_PATTERN
from marsvision.evaluation.plots import plot_dataset_classes


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_deterministic_by_seed(tmp_path):
    a = synthesize_ai4mars(tmp_path / "a", num_images=6, size=32, seed=11)
    b = synthesize_ai4mars(tmp_path / "b", num_images=6, size=32, seed=11)
    synthesize_ai4mars(tmp_path / "c", num_images=6, size=32, seed=12)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert {k: v for k, v in a.items() if k != "root"} == {k: v for k, v in b.items() if k != "root"}
    json.dumps(a)


def test_names_are_valid_and_official(synth_ai4mars, synth_msl):
    edrs = sorted((synth_ai4mars / "msl/images/edr").glob("*.JPG"))
    assert all(MSL_NAVCAM_PATTERN.match(p.stem) for p in edrs)
    assert all(Image.open(p).mode == "L" for p in edrs)
    sclks = [int(p.stem[4:13]) for p in edrs]
    assert sclks == sorted(sclks)
    images = sorted((synth_msl / "calibrated").glob("*.JPG"))
    assert all(MSL_MASTCAM_PATTERN.match(p.stem) for p in images)
    class_lines = (synth_msl / "msl_synset_words-indexed.txt").read_text().splitlines()
    assert len(class_lines) == 25 and re.match(r"^22\tsun$", class_lines[22])


def test_output_folder_must_be_new_and_failed_runs_leave_nothing(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(DatasetError, match="already exists"):
        synthesize_ai4mars(tmp_path / "taken", num_images=4, size=32)
    with pytest.raises(ValueError):
        synthesize_msl_v1(tmp_path / "small", num_images=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_200_images_of_256_px_in_under_a_minute(tmp_path):
    start = time.perf_counter()
    summary = synthesize_ai4mars(tmp_path / "big", num_images=200, size=256, seed=0)
    assert time.perf_counter() - start < 60
    assert summary["msl"]["train"] + summary["msl"]["test"] == 200
    shares = summary["msl"]["true_pixel_share"]
    assert all(share > 0.005 for share in shares)  # every terrain class is present


def test_class_proportions_drift_with_time(tmp_path):
    root = tmp_path / "drift"
    synthesize_ai4mars(root, num_images=40, size=48, seed=1, test_fraction=0.05)
    from marsvision.data import Ai4Mars

    dataset = Ai4Mars(root)
    half = len(dataset) // 2
    counts = [np.zeros(4), np.zeros(4)]
    for index in range(len(dataset)):
        label = dataset.read_label(index)
        counts[index >= half] += np.bincount(label.ravel(), minlength=256)[:4]
    early, late = (c / c.sum() for c in counts)
    assert late[1] > early[1] and late[0] < early[0]  # more bedrock, less soil later (by design)


def test_inspect_segmentation_dataset(synth_ai4mars, tmp_path):
    info = inspect_dataset(synth_ai4mars)
    json.dumps(info)
    assert info["format"] == "ai4mars" and info["problems"] == []
    train = info["splits"]["train"]
    assert train["count"] == 18 and train["missing_masks"] == {"rover": 0, "range": 0}
    assert abs(sum(train["pixel_share"].values()) - 1.0) < 1e-9
    assert set(info["splits"]) == {"train", "test-min1", "test-min2", "test-min3"}
    out = plot_dataset_classes(info, tmp_path / "fig" / "classes.png")
    assert Image.open(out).size[0] > 100


def test_inspect_classification_and_problems(synth_msl, tmp_path):
    copy = tmp_path / "msl"
    shutil.copytree(synth_msl, copy)
    first = (copy / "train-calibrated-shuffled.txt").read_text().split()[0]
    data = (copy / first).read_bytes()
    (copy / first).write_bytes(data[: len(data) // 2])
    info = inspect_dataset(copy)
    assert info["format"] == "msl-v1" and info["unlisted_images"] == 2
    assert sum(info["splits"]["train"]["images_per_class"].values()) == info["splits"]["train"]["count"]
    assert len(info["problems"]) == 1 and first.split("/")[-1] in info["problems"][0]
    plot_dataset_classes(info, tmp_path / "msl.png")
    assert (tmp_path / "msl.png").stat().st_size > 0


def test_inspect_reports_split_errors_instead_of_failing(official_sample):
    info = inspect_dataset(official_sample, validate=False)
    assert info["splits"]["train"]["count"] == 16
    assert info["splits"]["test-min3"]["count"] == 0 and "empty" in info["splits"]["test-min3"]["error"]
    assert info["splits"]["train"]["missing_images"] == 4


def test_inspect_unlabeled_folder(synth_paired, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(synth_paired / "images", images)
    (images / "notes" / "bad.png").parent.mkdir()
    (images / "notes" / "bad.png").write_bytes(b"nope")
    info = inspect_dataset(images)
    assert info["format"] == "unlabeled-folder" and info["splits"]["all"]["count"] == 12
    assert info["splits"]["all"]["unreadable"] == [str(images / "notes" / "bad.png")]
    assert len(info["problems"]) == 1
    with pytest.raises(ValueError, match="no split with class statistics"):
        plot_dataset_classes(info, tmp_path / "x.png")


def test_inspect_reports_bad_segmentation_files_once(synth_ai4mars, tmp_path):
    copy = tmp_path / "a"
    shutil.copytree(synth_ai4mars, copy)
    gold = sorted((copy / "msl/labels/test/masked-gold-min2-100agree").glob("*.png"))[0]
    Image.fromarray(np.full((64, 64), 8, np.uint8)).save(gold)
    edr = copy / "msl/images/edr" / gold.name.replace("_merged.png", ".JPG")
    data = edr.read_bytes()
    edr.write_bytes(data[: len(data) // 2])
    info = inspect_dataset(copy)
    assert sum("label values [8]" in p and gold.name in p for p in info["problems"]) == 1
    assert sum("cannot decode image" in p and edr.name in p for p in info["problems"]) == 1
    assert info["splits"]["test-min1"]["count"] == 6


def test_inspect_counts_paper_000s_six_classes_on_curiositys_images(synth_ai4mars, tmp_path):
    """Paper 000 Fig. 6: labeled pixels of soil, bedrock, sand, big rock, rover and background (MSL)."""
    info = inspect_dataset(synth_ai4mars, validate=False, options={"class_mode": "paper6", "rover": "msl"})
    train = info["splits"]["train"]
    assert list(train["pixel_share"]) == ["soil", "bedrock", "sand", "big rock", "rover", "background"]
    assert abs(sum(train["pixel_share"].values()) - 1.0) < 1e-9
    assert train["pixels_per_class"]["rover"] > 0 and train["pixels_per_class"]["background"] > 0
    out = plot_dataset_classes(info, tmp_path / "fig6.png")
    assert Image.open(out).size[0] > 100
    with pytest.raises(ValueError, match="takes no option"):
        inspect_dataset(synth_ai4mars, validate=False, options={"colour": "red"})
