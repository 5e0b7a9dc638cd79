"""`evaluate` scores a trained checkpoint on any split of its dataset, e.g. the MSL test split once a user has it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from marsvision import runfolder
from marsvision.data.synth import synthesize_msl_v1
from marsvision.evaluation.metrics import classification_metrics
from marsvision.training import api
from marsvision.training.api import evaluate_checkpoint, train
from marsvision.training.config import load_config
from marsvision.training.data import build_eval_dataset
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


def test_evaluation_runs_on_the_device_it_is_given(msl_run, tmp_path: Path, monkeypatch):
    """The run's own test pass runs where it trained, and ``evaluate --device`` where it is told (here the CPU)."""
    root, run_dir = msl_run
    devices: list[torch.device] = []
    evaluate_model = api.evaluate_model

    def recording(module, *args, **kwargs):
        devices.append(next(module.parameters()).device)
        return evaluate_model(module, *args, **kwargs)

    monkeypatch.setattr(api, "evaluate_model", recording)
    moved: list[torch.device] = []
    to = torch.nn.Module.to

    def recording_to(self, *args, **kwargs):
        if args and isinstance(args[0], torch.device):
            moved.append(args[0])
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", recording_to)
    evaluate_checkpoint(run_dir, device="cpu")
    assert devices == [torch.device("cpu")] and torch.device("cpu") in moved
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            evaluate_checkpoint(run_dir, device="cuda")
    config = load_config(
        "wang-cls-msl-cpu",
        [
            f"data.root={root}",
            "data.image_size=32",
            "data.cache_dir=null",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.progress_bar=false",
            "trainer.device=cpu",
            f"runs_root={tmp_path}",
        ],
    )
    moved.clear()
    train(config)
    assert devices[-1] == torch.device("cpu") and torch.device("cpu") in moved, "tested on the training device"


def test_evaluation_with_flip_tta_averages_each_images_probabilities_with_its_mirrors(paired_folder, tmp_path):
    config = load_config(
        None,
        [
            "task=segmentation",
            "data.dataset=paired-folder",
            f"data.root={paired_folder}",
            "data.image_size=32",
            "data.test_holdout=4",
            "data.val_fraction=0",
            "data.batch_size=4",
            "model.encoder=r18_0.25x_sk0",
            "optim.name=adam",
            "optim.lr=0.01",
            "trainer.max_epochs=6",
            "trainer.early_stopping_patience=null",
            "trainer.progress_bar=false",
            "trainer.device=cpu",
            f"runs_root={tmp_path}",
        ],
    )
    run_dir = Path(train(config)["run_dir"])
    plain = evaluate_checkpoint(run_dir)  # the run's own test set: the held-out images

    result = evaluate_checkpoint(run_dir, tta="flip")

    module, saved = api.load_module(runfolder.best_checkpoint(run_dir))
    module.eval().double()
    dataset, _, split = build_eval_dataset(saved, None)
    hits = total = 0
    with torch.no_grad():
        for item in dataset:
            image, label = item["image"][None].double(), item["label"]
            mirrored = module(image.flip(-1)).softmax(1).flip(-1)  # (1, K, H, W), mirrored back
            pred = (module(image).softmax(1) + mirrored).argmax(1)[0]
            valid = label != 255
            hits += int((pred[valid] == label[valid]).sum())
            total += int(valid.sum())
    assert result["test_time_augmentation"] == "flip" and plain["test_time_augmentation"] == "none"
    assert result["metrics"]["acc"] == pytest.approx(hits / total, abs=1e-9)
    assert result["metrics"]["total"] == total
    assert result["metrics"]["acc"] != plain["metrics"]["acc"]  # the mirror changed some pixels' class here
    assert (run_dir / f"eval-{split}-tta-flip.json").is_file() and (run_dir / f"eval-{split}.json").is_file()
    with pytest.raises(ValueError, match="unknown tta 'rotate'"):
        evaluate_checkpoint(run_dir, tta="rotate")
