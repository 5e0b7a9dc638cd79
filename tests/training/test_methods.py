"""Every registered method, through the same checks: it trains on generated data, logs the loss parts it declares,
each part enters the total with the weight its config key gives, and a run stopped after a step and resumed
replays the uninterrupted one exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crash import CrashAtEpoch, CrashError
from marsvision.data.synth import synthesize_msl_v1
from marsvision.training import api
from marsvision.training.api import train
from marsvision.training.config import load_config
from marsvision.training.registry import method_class, method_names
from marsvision.training.runs import read_metrics
from marsvision.training.trainer import build_trainer

COMMON = [
    "optim.name=sgd",
    "optim.lr=0.01",
    "trainer.early_stopping_patience=null",
    "trainer.progress_bar=false",
    "trainer.device=cpu",
    "trainer.limit_train_batches=1",  # one step per epoch: epoch records are step values
]
SEGMENTATION = [
    "data.dataset=paired-folder",
    "data.image_size=32",
    "data.batch_size=4",
    "data.unlabeled_batch_size=2",
    "data.test_holdout=2",
    "data.val_fraction=0",
    "data.label_count=4",
    "model.head=deeplabv3plus",
    "model.encoder=r18_0.25x_sk0",
    "semiseg.embedding_dim=8",
    "semiseg.stage_epochs=[1,1,1]",  # contrastive, joint (its weight shows at epoch 1), pseudo labels
    "segbaseline.pseudo_label_threshold=0.0",  # an untrained teacher is never confident
    "segbaseline.reco_num_queries=4",
    "segbaseline.reco_num_negatives=8",
    "consistency.threshold=0.0",  # every pseudo label counts: the unlabeled parts are non-zero from step 0
    "less.stage_epochs=[0,1,1]",  # LESS without its labeler stage (test_less.py runs all three)
    "less.resize=8",
]
CLASSIFICATION = [
    "data.dataset=msl-v1",
    "data.image_size=32",
    "data.channels=3",
    "data.eval_split=val",
    "data.val_fraction=0",
    "data.batch_size=8",
    "data.unlabeled_batch_size=4",
    "model.encoder=r18_0.25x_sk0",
    "model.projection_dim=8",
    "classification.pseudo_label_threshold=0.0",
    "consistency.threshold=0.0",
    "clsbaseline.decoupling_stage_epochs=[1,1]",  # representation, then classifier re-training
    "clsbaseline.supcon_stage_epochs=[1,1]",  # SupCon's representation, then its classifier
    "clsbaseline.sscl_threshold=0.0",  # every co-calibrated pseudo label counts from step 0
    "clsbaseline.jigsaw_embedding_dim=16",  # the paper's 1000 → 4096 head alone would be 37 M parameters
    "clsbaseline.jigsaw_hidden_dim=32",
]
PRETRAINING = [
    "data.dataset=paired-folder",
    "data.image_size=32",
    "data.batch_size=4",
    "model.encoder=r18_0.25x_sk0",
    "model.projection_dim=8",
]


@pytest.fixture(scope="module")
def msl_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("msl") / "msl-v1"
    synthesize_msl_v1(root, num_images=48, size=32, seed=0)
    return root


def method_config(method: str, roots: dict[str, Path], runs_root: Path, epochs: int, extra: list[str] | None = None):
    task = method_class(method).task
    data = {"segmentation": SEGMENTATION, "classification": CLASSIFICATION, "pretrain": PRETRAINING}[task]
    root = roots["classification" if task == "classification" else "segmentation"]
    overrides = [f"method={method}", f"name={method}", f"data.root={root}", f"runs_root={runs_root}", *data, *COMMON]
    return load_config(None, [*overrides, f"trainer.max_epochs={epochs}", *(extra or [])])


def epochs_of(method: str) -> int:
    return 3 if method == "wang-seg" else 2


def weight_epoch(method: str) -> int:
    """The first epoch whose step has every weighted part active (the semi-supervised segmentation's joint stage)."""
    return 1 if method == "wang-seg" else 0


def train_records(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in read_metrics(Path(result["run_dir"])) if r["split"] == "train"]


def weight_value(config: Any, key: str) -> float:
    section, name = key.split(".")
    return float(getattr(getattr(config, section), name))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", method_names())
def test_every_method_trains_logs_its_parts_weighs_them_and_resumes_exactly(
    method: str, paired_folder: Path, msl_root: Path, tmp_path: Path, monkeypatch
):
    module_class = method_class(method)
    roots = {"segmentation": paired_folder, "classification": msl_root}
    epochs = epochs_of(method)
    config = method_config(method, roots, tmp_path / "full", epochs)
    full = train(config)
    records = train_records(full)
    assert [r["epoch"] for r in records] == list(range(epochs))
    assert all(r["loss"] == r["loss"] for r in records), "a logged loss is NaN"
    if module_class.task != "pretrain":
        assert full["metrics"], f"{method}: no test evaluation"

    # each declared part is logged, and enters the total with its weight: L = L_unweighted + Σ w_k · part_k
    at = records[weight_epoch(method)]
    for part in module_class.loss_weights:
        assert part in at, f"{method}: loss part {part!r} is not logged"
    if module_class.loss_weights:
        base = at[module_class.unweighted_part] + sum(
            weight_value(config, key) * at[part] for part, key in module_class.loss_weights.items()
        )
        assert at["loss"] == pytest.approx(base, rel=1e-5, abs=1e-6)
        for part, key in module_class.loss_weights.items():
            assert at[part] != 0.0, f"{method}: {part} is zero, so its weight cannot be checked"
            moved = weight_value(config, key) + 1.5
            changed = train(
                method_config(method, roots, tmp_path / f"w-{part}", weight_epoch(method) + 1, [f"{key}={moved}"])
            )
            after = train_records(changed)[weight_epoch(method)]
            assert after[part] == pytest.approx(at[part], rel=1e-5), f"{method}: {part} changed with its weight"
            assert after["loss"] - at["loss"] == pytest.approx(1.5 * at[part], rel=1e-4, abs=1e-6), (method, part)

    assert_resume_replays(method, roots, tmp_path, monkeypatch, records)


def assert_resume_replays(
    method: str,
    roots: dict[str, Path],
    tmp_path: Path,
    monkeypatch,
    records: list[dict],
    extra: list[str] | None = None,
) -> None:
    """Stop a run after its first step, resume it, and get the uninterrupted run's ``records`` bit for bit."""
    epochs = len(records)

    def crashing_trainer(*args: Any, **kwargs: Any):
        kwargs["extra_callbacks"] = [CrashAtEpoch(epochs - 1)]
        return build_trainer(*args, **kwargs)

    monkeypatch.setattr(api, "build_trainer", crashing_trainer)
    with pytest.raises(CrashError):
        train(method_config(method, roots, tmp_path / "interrupted", epochs, extra))
    monkeypatch.undo()
    (interrupted,) = (tmp_path / "interrupted").iterdir()
    resumed = train(None, resume=interrupted)
    assert [r["loss"] for r in train_records(resumed)] == [r["loss"] for r in records], method
    for part in method_class(method).loss_weights:
        assert [r.get(part) for r in train_records(resumed)] == [r.get(part) for r in records], (method, part)
