"""Tiny trained checkpoints (segmentation and classification), trained once per test session."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from marsvision.data.synth import synthesize_msl_v1
from marsvision.training.api import train
from marsvision.training.config import load_config
from paired_data import write_paired_folder

SEG_SIZE = 32
SEG_CLASSES = ["soil", "bedrock", "sand", "big rock"]


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """On a shared 2-core machine, OpenMP threads spin against other jobs: tiny convs become ~400× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _restore_lightning_logging() -> Iterator[None]:
    """``--json`` points Lightning's loggers at the CliRunner's stderr, which is closed after the call."""
    loggers = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch", "lightning.fabric")]
    saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
    yield
    for logger, (handlers, propagate) in zip(loggers, saved, strict=True):
        logger.handlers, logger.propagate = handlers, propagate


def _checkpoint(result: dict) -> Path:
    path = Path(result["run_dir"]) / "checkpoints" / "last.ckpt"
    assert path.is_file()
    return path


COMMON = [
    "optim.name=sgd",
    "trainer.early_stopping_patience=null",
    "trainer.progress_bar=false",
    "trainer.device=cpu",
]


@pytest.fixture(scope="session")
def seg_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_paired_folder(tmp_path_factory.mktemp("seg") / "paired", count=12, size=SEG_SIZE, seed=0)


@pytest.fixture(scope="session")
def seg_checkpoint(seg_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("seg-runs")
    config = load_config(
        None,
        [
            "name=seg",
            "task=segmentation",
            f"runs_root={runs}",
            "data.dataset=paired-folder",
            f"data.root={seg_data}",
            f"data.image_size={SEG_SIZE}",
            "data.batch_size=4",
            "data.test_holdout=2",
            "data.val_fraction=0.2",
            "model.encoder=r18_0.25x_sk0",
            "trainer.max_epochs=2",
            "optim.lr=0.05",
            *COMMON,
        ],
    )
    return _checkpoint(train(config))


@pytest.fixture(scope="session")
def msl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("msl") / "msl"
    synthesize_msl_v1(root, num_images=48, size=32)
    return root


@pytest.fixture(scope="session")
def cls_checkpoint(msl_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = msl_root
    runs = tmp_path_factory.mktemp("cls-runs")
    config = load_config(
        None,
        [
            "name=cls",
            "task=classification",
            f"runs_root={runs}",
            "data.dataset=msl-v1",
            f"data.root={root}",
            "data.image_size=32",
            "data.channels=3",
            "data.batch_size=8",
            "data.eval_split=val",
            "model.encoder=resnet18",
            "classification.loss=ce",
            "trainer.max_epochs=1",
            # a small step keeps the logits O(1): an abs-diff tolerance of 1e-4 means little on logits of 1000
            "optim.lr=0.002",
            *COMMON,
        ],
    )
    return _checkpoint(train(config))
