"""`evaluate` scores a trained checkpoint on any split of its dataset, e.g. the MSL test split once a user has it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marsvision.data.synth import synthesize_msl_v1
from marsvision.evaluation.metrics import classification_metrics
from marsvision.training.api import evaluate_checkpoint, train
from marsvision.training.config import load_config
from marsvision.training.runs import read_metrics


@pytest.fixture(scope="module")
def msl_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("msl") / "msl-v1"
    synthesize_msl_v1(root, num_images=60, size=32, seed=0)
    config = load_config(
        "wang-cls-msl-cpu",
        [
            f"data.root={root}",
            "data.image_size=32",
            "data.cache_dir=null",
            "classification.loss=ce",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1.0",
            "trainer.progress_bar=false",
            "trainer.device=cpu",
            f"runs_root={root.parent / 'runs'}",
        ],
    )
    return root, Path(train(config)["run_dir"])


def test_evaluate_on_the_test_split_writes_its_own_file(msl_run):
    root, run_dir = msl_run
    test_lines = (root / "test-calibrated-shuffled.txt").read_text().splitlines()
    result = evaluate_checkpoint(run_dir, split="test")
    assert result["split"] == "test"
    assert result["metrics"]["total"] == len(test_lines)
    saved = json.loads((run_dir / "eval-test.json").read_text())
    recomputed = classification_metrics(saved["confusion_matrix"], saved["class_names"])
    assert recomputed["top1"] == pytest.approx(result["metrics"]["top1"])
    assert len(saved["class_names"]) == 24 and "sun" not in saved["class_names"]


def test_evaluate_defaults_to_the_runs_own_evaluation_split(msl_run):
    root, run_dir = msl_run
    val_lines = (root / "val-calibrated-shuffled.txt").read_text().splitlines()
    result = evaluate_checkpoint(run_dir)
    assert result["split"] == "val" and result["metrics"]["total"] == len(val_lines)


@pytest.mark.parametrize("loss", ["ours", "focal", "class-balanced", "supcon", "pseudo-label", "mixup", "cutmix"])
def test_every_classification_method_trains_and_evaluates(msl_run, tmp_path: Path, loss: str):
    root, _ = msl_run
    config = load_config(
        "wang-cls-msl-cpu",
        [
            f"data.root={root}",
            "data.image_size=32",
            "data.cache_dir=null",
            "data.batch_size=8",
            "data.unlabeled_batch_size=4",
            f"classification.loss={loss}",
            "classification.pseudo_label_threshold=0.0",  # so the pseudo-label branch really runs
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.progress_bar=false",
            "trainer.device=cpu",
            f"runs_root={tmp_path}",
        ],
    )
    result = train(config)
    train_record = next(r for r in read_metrics(Path(result["run_dir"])) if r["split"] == "train")
    expected_part = {"ours": "inter_class", "supcon": "inter_class", "pseudo-label": "pseudo"}.get(loss, "ce")
    assert expected_part in train_record and train_record["loss"] == train_record["loss"]  # logged and not NaN
    assert 0.0 <= result["metrics"]["top1"] <= 1.0
