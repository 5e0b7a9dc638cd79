"""No input is skipped without a word: skipped labels, images and links are counted and listed, ``data inspect``
exits 1 when it found problems, and ``predict`` does not silently replace an earlier run's table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_walkthrough import Walkthrough, marsvision

from marsvision.data.folders import PairedFolder
from marsvision.data.inspect import inspect_dataset
from marsvision.data.synth import synthesize_ai4mars, synthesize_msl_v1, synthesize_paired_folder
from marsvision.inference.inputs import expand_inputs


@pytest.fixture
def ai4mars(tmp_path: Path) -> Path:
    root = tmp_path / "ai4mars"
    synthesize_ai4mars(root, num_images=12, size=32, seed=0)
    return root


def test_a_label_without_its_image_is_a_listed_problem_and_inspect_exits_1(ai4mars: Path):
    image = sorted((ai4mars / "msl" / "images" / "edr").iterdir())[0]
    image.unlink()
    info = inspect_dataset(ai4mars, validate=False)
    assert info["splits"]["train"]["missing_images"] == 1
    assert any("label without an image (skipped)" in p and image.stem[:10] in p for p in info["problems"])
    done = marsvision("data", "inspect", ai4mars, "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["problems"]
    assert "1 label(s) have no image and are skipped" in done.stderr


def test_a_clean_dataset_inspects_with_exit_0_and_counts_unlabeled_images(ai4mars: Path):
    labels = sorted((ai4mars / "msl" / "labels" / "train").iterdir())
    labels[0].unlink()
    info = inspect_dataset(ai4mars, validate=False)
    assert info["problems"] == [] and info["unlabeled_images"] == 1


def test_the_paired_folder_reader_treats_a_label_without_image_like_ai4mars(tmp_path: Path):
    root = tmp_path / "paired"
    synthesize_paired_folder(root, num_images=6, size=32, seed=0)
    first = sorted((root / "images").iterdir())[0]
    first.unlink()
    dataset = PairedFolder(root)
    assert len(dataset) == 5 and dataset.missing_images == [str(root / "labels" / f"{first.stem}.png")]
    info = inspect_dataset(root, validate=False)
    assert info["splits"]["all"]["missing_images"] == 1 and len(info["problems"]) == 1


def test_an_unreadable_msl_list_is_a_problem_not_only_a_split_detail(tmp_path: Path):
    root = tmp_path / "msl"
    synthesize_msl_v1(root, num_images=48, size=32, seed=0)
    (root / "test-calibrated-shuffled.txt").write_text("calibrated/no-class-id.JPG\n")
    info = inspect_dataset(root, validate=False)
    assert "error" in info["splits"]["test"]
    assert any("test-calibrated-shuffled.txt" in p for p in info["problems"])


def test_a_broken_link_in_a_predict_folder_is_listed(tmp_path: Path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "real.png").write_bytes(b"")
    (folder / "gone.png").symlink_to(tmp_path / "deleted.png")
    images, failed = expand_inputs([str(folder)])
    assert [i.path.name for i in images] == ["real.png"]
    assert failed == [{"path": str(folder / "gone.png"), "error": "broken symbolic link (no target)"}]


def test_predict_refuses_to_replace_an_earlier_table_without_overwrite(walkthrough: Walkthrough, tmp_path: Path):
    run = walkthrough.run_dir("demo-finetune-")
    out = shutil.copytree(walkthrough.root / "pred", tmp_path / "pred")
    one = sorted((walkthrough.data / "msl" / "images" / "edr").iterdir())[0]
    before = (out / "areas.csv").read_text()
    refused = marsvision("predict", "--checkpoint", run, one, "--out", out)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert (out / "areas.csv").read_text() == before
    replaced = marsvision("predict", "--checkpoint", run, one, "--out", out, "--overwrite", "--json")
    assert replaced.returncode == 0 and json.loads(replaced.stdout)["written"] == 1
    assert len((out / "areas.csv").read_text().splitlines()) == 2
