"""End-to-end: a tiny run writes its run directory; a resumed run replays the uninterrupted one exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from crash import CrashAtEpoch, CrashError
from marsvision.training import api, runs
from marsvision.training.api import train
from marsvision.training.checkpoint import safe_torch_load
from marsvision.training.config import load_config
from marsvision.training.trainer import build_trainer


def tiny_config(root: Path, runs_root: Path, epochs: int, name: str = "tiny"):
    return load_config(
        None,
        [
            f"name={name}",
            "task=segmentation",
            f"runs_root={runs_root}",
            "data.dataset=paired-folder",
            f"data.root={root}",
            "data.image_size=32",
            "data.batch_size=4",
            "data.test_holdout=2",
            "data.val_fraction=0.2",
            "model.encoder=r18_0.25x_sk0",
            "optim.name=sgd",
            "optim.lr=0.05",
            "optim.schedule=cosine",
            f"trainer.max_epochs={epochs}",
            "trainer.early_stopping_patience=null",
            "trainer.progress_bar=false",
            "trainer.device=cpu",
        ],
    )


def train_losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in runs.read_metrics(run_dir) if r["split"] == "train"]


def test_run_directory_contents(paired_folder: Path, tmp_path: Path):
    result = train(tiny_config(paired_folder, tmp_path / "runs", epochs=2), argv=["marsvision", "train"])
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("tiny-")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["image_size"] == 32 and config["model"]["encoder"] == "r18_0.25x_sk0"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["command"] == ["marsvision", "train"]
    assert {"torch", "torchvision", "lightning", "python"} <= set(meta["versions"])
    assert "git_commit" in meta
    records = runs.read_metrics(run_dir)
    assert [(r["epoch"], r["split"]) for r in records if r["stage"] != "eval"] == [
        (0, "train"),
        (0, "val"),
        (1, "train"),
        (1, "val"),
    ]
    assert records[-1]["stage"] == "eval" and 0.0 <= records[-1]["acc"] <= 1.0
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert evaluation["class_names"] == ["soil", "bedrock", "sand", "big rock"]
    matrix = evaluation["confusion_matrix"]
    assert sum(map(sum, matrix)) == evaluation["metrics"]["total"] > 0
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("last.ckpt", "best.ckpt"):
        state = safe_torch_load(run_dir / "checkpoints" / name)
        assert state["hyper_parameters"]["class_names"] == evaluation["class_names"]


def test_resume_reproduces_the_uninterrupted_run(paired_folder: Path, tmp_path: Path, monkeypatch):
    full = Path(train(tiny_config(paired_folder, tmp_path / "a", epochs=3))["run_dir"])

    def crashing_trainer(*args, **kwargs):
        kwargs["extra_callbacks"] = [CrashAtEpoch(2)]
        return build_trainer(*args, **kwargs)

    monkeypatch.setattr(api, "build_trainer", crashing_trainer)
    with pytest.raises(CrashError):
        train(tiny_config(paired_folder, tmp_path / "b", epochs=3))
    monkeypatch.undo()
    (interrupted,) = (tmp_path / "b").iterdir()
    state_before = safe_torch_load(interrupted / "checkpoints" / "last.ckpt")
    assert state_before["epoch"] == 1 and state_before["optimizer_states"]
    train(None, resume=interrupted)
    expected, resumed = train_losses(full), train_losses(interrupted)
    assert len(expected) == len(resumed) == 3
    assert resumed == expected, "resumed losses differ from the uninterrupted run"
    state_after = safe_torch_load(interrupted / "checkpoints" / "last.ckpt")
    assert state_after["epoch"] == 2 and state_after["global_step"] > state_before["global_step"]
    assert state_after["lr_schedulers"][0]["last_epoch"] == state_after["global_step"]


def test_channels_last_changes_the_layout_not_the_numbers(paired_folder: Path, tmp_path: Path):
    losses = {}
    for layout in ("false", "true"):
        config = tiny_config(paired_folder, tmp_path / layout, epochs=1)
        config.trainer.channels_last = layout == "true"
        losses[layout] = train_losses(Path(train(config)["run_dir"]))
    # Different memory layouts sum in a different order: agreement to float32 accumulation error, not bits.
    assert losses["true"] == pytest.approx(losses["false"], rel=1e-3)


def test_bf16_autocast_with_channels_last_trains_close_to_float32(paired_folder: Path, tmp_path: Path):
    """The GPU recipe's settings (bf16 autocast + channels_last) on the CPU: bf16 rounding shows in the losses,
    which stay within a few per cent of float32's."""
    losses = {}
    for precision in ("32", "bf16-mixed"):
        config = tiny_config(paired_folder, tmp_path / precision, epochs=1)
        config.trainer.precision = precision
        config.trainer.channels_last = precision == "bf16-mixed"
        config.optim.lr = 0.005  # small steps: the comparison is of the arithmetic, not of a chaotic first update
        losses[precision] = train_losses(Path(train(config)["run_dir"]))
    assert losses["bf16-mixed"] != losses["32"], "autocast did not change the arithmetic"
    assert losses["bf16-mixed"] == pytest.approx(losses["32"], rel=5e-2)
