"""The accuracy harness: its tuning folder, its metric summary and its reuse of finished runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # as in test_accuracy_peers.py: `benchmarks` must be the repository's folder
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import data  # noqa: E402
from benchmarks.accuracy.run import Row, _finished_run, _percent, pretraining_cache  # noqa: E402

from marsvision.data.synth import synthesize_paired_folder  # noqa: E402


def test_dev_folder_is_the_pool_without_the_test_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    synthesize_paired_folder(shared / "ai4mars-msl-256-train", num_images=24, size=32, seed=0)
    monkeypatch.setenv("MARSVISION_SHARED_DATA", str(shared))
    monkeypatch.setattr(data, "SEG_TEST_IMAGES", 6)

    linked = data.write_segmentation_dev_folder(tmp_path / "dev")

    test = {image.name for image in data.segmentation_split(None).test_images}
    dev_images = {path.name for path in (tmp_path / "dev" / "images").iterdir()}
    every_image = {path.name for path in (shared / "ai4mars-msl-256-train" / "images").iterdir()}
    assert (linked, len(test)) == (18, 6)
    assert dev_images.isdisjoint(test) and dev_images | test == every_image
    dev_labels = {path.stem for path in (tmp_path / "dev" / "labels").iterdir()}
    assert dev_labels == {Path(name).stem for name in dev_images}
    assert all(path.resolve().is_file() for path in (tmp_path / "dev" / "labels").iterdir())


def test_classes_missing_from_the_test_set_have_no_per_class_accuracy() -> None:
    metrics = {"top1": 0.5, "macc": 0.25, "per_class_accuracy": {"wheel": 0.5, "scoop": None}}
    assert _percent("classification", metrics) == {"top1": 50.0, "mean_class_acc": 25.0, "acc/wheel": 50.0}


def test_a_finished_run_is_reused_and_an_unfinished_one_is_not(tmp_path: Path) -> None:
    for folder, finished in (("cls-ce-seed0-20261130-010000", True), ("cls-ce-seed0-20261130-020000", False)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "result.json").write_text(json.dumps({"run_dir": folder}))
        if finished:
            (tmp_path / folder / "eval.json").write_text("{}")
    assert _finished_run(tmp_path, "cls-ce-seed0") == {"run_dir": "cls-ce-seed0-20261130-010000"}
    assert _finished_run(tmp_path, "cls-ce-seed1") is None


def test_pretraining_is_shared_by_rows_with_the_same_overrides_only(tmp_path: Path) -> None:
    def row(name: str, *overrides: str) -> Row:
        return Row("segmentation", 100, name, (0,), pretrain="simclr-x", pretrain_overrides=overrides)

    plain, batched = row("a"), row("b", "simclr.batched_views=true")
    assert pretraining_cache(plain, 1, tmp_path, quick=False) == tmp_path / "simclr-x-seed1.json"
    assert (
        pretraining_cache(batched, 1, tmp_path, quick=True).name
        == "simclr-x-simclr.batched_views-true-seed1-quick.json"
    )
    assert pretraining_cache(row("c", "simclr.batched_views=true"), 1, tmp_path, quick=True) == pretraining_cache(
        batched, 1, tmp_path, quick=True
    )
