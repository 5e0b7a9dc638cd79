"""The epoch breakdown reads the last epoch's records of Lightning's profiler and accounts for every second."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # as in test_accuracy_peers.py: `benchmarks` must be the repository's folder
    sys.path.insert(0, str(ROOT))

from benchmarks.breakdown import PARTS, epoch_breakdown  # noqa: E402


def test_breakdown_of_the_last_epoch_by_hand() -> None:
    # two epochs of two steps; the first epoch's records (9.0) must not count
    durations = {
        "[_TrainingEpochLoop].train_dataloader_next": [9.0, 9.0, 0.10, 0.20],
        "[Strategy]SingleDeviceStrategy.training_step": [9.0, 9.0, 0.30, 0.40],
        "[Strategy]SingleDeviceStrategy.backward": [9.0, 9.0, 0.50, 0.60],
        "[LightningModule]SemiSegModule.optimizer_step": [9.0, 9.0, 0.85, 1.05],  # closure + 0.05 + 0.05
        "[LightningModule]SemiSegModule.optimizer_zero_grad": [9.0, 9.0, 0.01, 0.01],
        "run_training_batch": [9.0, 9.0, 0.9, 1.1],
        "run_training_epoch": [9.0, 2.5],
        "save_checkpoint": [9.0, 0.7],
        "[Callback]ModelCheckpoint{'monitor': None}.on_train_epoch_end": [9.0, 0.75],
        "[Callback]JsonlMetrics.on_train_epoch_end": [9.0, 0.05],
    }
    parts = epoch_breakdown(durations, steps=2)
    expected = {
        "data": 0.30,
        "forward": 0.70,
        "backward": 1.10,
        "optimizer": 0.12,
        "checkpoint": 0.70,
        # epoch 2.5 + 0.8 of epoch-end hooks = 3.3 s in all
        "hooks_and_logging": 3.3 - (0.30 + 0.70 + 1.10 + 0.12 + 0.70),
    }
    assert tuple(parts) == PARTS
    assert parts == pytest.approx(expected)
    assert sum(parts.values()) == pytest.approx(3.3)
