"""Adding a method or a reader is one class plus one registry line: a toy method and a toy reader, registered
from this file, train and inspect through the command line like the bundled ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from marsvision.cli import app
from marsvision.data.base import SegmentationDataset, SegmentationSample
from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.classmodes import get_class_mode
from marsvision.data.preprocess import Preprocessing
from marsvision.data.reader import Reader
from marsvision.data.registry import register_dataset, unregister_dataset
from marsvision.training.api import train
from marsvision.training.config import ConfigError, load_config
from marsvision.training.data import ClassInfo, Task
from marsvision.training.lightning_base import MarsvisionModule, NonFiniteLossError
from marsvision.training.registry import register_method, unregister_method


class BrightnessSegmentation(MarsvisionModule):
    """A toy method: one 1×1 convolution maps each pixel's brightness to class scores."""

    task: ClassVar[Task] = "segmentation"

    def __init__(self, config: Any, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.conv = nn.Conv2d(config.data.channels, self.num_classes, kernel_size=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)  # (N, K, H, W)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        labeled = batch["labeled"]
        loss = F.cross_entropy(self(labeled["image"]), labeled["label"], ignore_index=IGNORE_INDEX)
        return self.log_loss_parts({"loss": loss}, batch_size=len(labeled["image"]))


class DivergingSegmentation(BrightnessSegmentation):
    """A toy method whose loss is not finite: the run must stop at once, naming the step and the parts."""

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        ce = F.cross_entropy(self(batch["labeled"]["image"]), batch["labeled"]["label"], ignore_index=IGNORE_INDEX)
        return self.log_loss_parts({"loss": ce * float("inf"), "ce": ce}, batch_size=4)


class FlatPairs(SegmentationDataset, Reader):
    """A toy reader: ``<id>.img.png`` next to ``<id>.lbl.png`` in one folder, AI4Mars label values."""

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(root.glob("*.lbl.png"))

    @classmethod
    def config_options(cls, data: Any) -> dict[str, Any]:
        return {"class_mode": data.class_mode}

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        class_mode: str = "terrain4",
        image_size: int | None = None,
        preprocess: str = "plain",
        channels: int = 1,
        transform: Any = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        path = Path(root)
        samples = [
            SegmentationSample(
                label.name.removesuffix(".lbl.png"), label.with_name(label.name[:-8] + ".img.png"), label
            )
            for label in sorted(path.glob("*.lbl.png"))
        ]
        prep = Preprocessing(preprocess, image_size, channels)
        super().__init__(path, samples, get_class_mode(class_mode), prep, transform, cache_dir)


@pytest.fixture
def toys() -> Iterator[None]:
    register_method("toy-brightness", BrightnessSegmentation)
    register_method("toy-diverging", DivergingSegmentation)
    register_dataset("flat-pairs", FlatPairs, before="unlabeled-folder")
    yield
    unregister_method("toy-brightness")
    unregister_method("toy-diverging")
    unregister_dataset("flat-pairs")


def write_flat_pairs(root: Path, count: int = 10, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(count):
        label = rng.integers(0, 4, size=(size // 8, size // 8)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
        Image.fromarray((label * 60 + 10).astype(np.uint8), mode="L").save(root / f"tile{i:02d}.img.png")
        Image.fromarray(label, mode="L").save(root / f"tile{i:02d}.lbl.png")
    return root


def toy_overrides(root: Path, runs_root: Path, method: str) -> list[str]:
    return [
        f"method={method}",
        "data.dataset=flat-pairs",
        f"data.root={root}",
        "data.image_size=32",
        "data.preprocess=plain",
        "data.class_mode=terrain4",
        "data.test_holdout=2",
        "data.val_fraction=0",
        "data.batch_size=4",
        "optim.lr=0.1",
        "trainer.max_epochs=2",
        "trainer.progress_bar=false",
        f"runs_root={runs_root}",
    ]


@pytest.mark.usefixtures("toys")
def test_a_method_and_a_reader_registered_here_inspect_and_train_through_the_cli(tmp_path: Path):
    root = write_flat_pairs(tmp_path / "tiles")
    runner = CliRunner()
    inspected = runner.invoke(app, ["data", "inspect", str(root), "--json"])
    assert inspected.exit_code == 0, inspected.output
    info = json.loads(inspected.stdout)
    assert info["format"] == "flat-pairs" and info["splits"]["all"]["count"] == 10
    assert sum(info["splits"]["all"]["pixels_per_class"].values()) == 10 * 32 * 32

    trained = runner.invoke(app, ["train", *toy_overrides(root, tmp_path / "runs", "toy-brightness"), "--json"])
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["method"] == "toy-brightness" and result["task"] == "segmentation"
    assert result["images_seen"] == {"labeled": 8, "unlabeled": 0}
    assert 0.0 <= result["metrics"]["acc"] <= 1.0 and result["metrics"]["total"] == 2 * 32 * 32


@pytest.mark.usefixtures("toys")
def test_a_non_finite_loss_stops_the_run_naming_the_step_and_the_parts(tmp_path: Path):
    root = write_flat_pairs(tmp_path / "tiles")
    config = load_config(None, toy_overrides(root, tmp_path / "runs", "toy-diverging"))
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 0 \(epoch 0\): loss=inf, ce=\d"):
        train(config)


def test_unregistered_names_are_refused_with_the_valid_ones(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"method: unknown method 'toy-brightness'; choose one of \['simclr'"):
        load_config(None, ["method=toy-brightness"])
    with pytest.raises(ConfigError, match=r"data\.dataset: unknown dataset reader 'flat-pairs'.*'paired-folder'"):
        load_config(None, ["data.dataset=flat-pairs"])
    with pytest.raises(ValueError, match="already registered"):
        register_method("simclr", BrightnessSegmentation)
