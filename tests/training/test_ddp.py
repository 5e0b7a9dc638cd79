"""Two-process DDP on the CPU (gloo) through the real command line: one run directory, one report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from marsvision.training import runs


@pytest.mark.parametrize(
    ("command", "task_overrides"),
    [
        (
            "train",
            ["-r", "demo-semiseg", "semiseg.stage_epochs=[1,1,1]", "semiseg.embedding_dim=16", "data.label_fraction=1"],
        ),
        ("pretrain", ["-r", "demo-simclr"]),
    ],
    ids=["semiseg-memory-bank-gather", "simclr-negative-gather"],
)
def test_two_process_ddp_run(paired_folder: Path, tmp_path: Path, command: str, task_overrides: list[str]):
    runs_root = tmp_path / "runs"
    arguments = [
        sys.executable,
        "-m",
        "marsvision.cli",
        command,
        *task_overrides,
        "data.dataset=paired-folder",
        f"data.root={paired_folder}",
        "data.class_mode=terrain4",
        "data.image_size=32",
        "data.batch_size=2",
        "data.unlabeled_batch_size=2",
        "data.test_holdout=2",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        f"runs_root={runs_root}",
        "--device",
        "cpu",
        "--devices",
        "2",
        "--json",
    ]
    environment = {k: v for k, v in os.environ.items() if k != runs.RUN_DIR_ENV}
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.strip().splitlines()  # only rank 0 reports
    result = json.loads(line)
    (run_dir,) = runs_root.iterdir()  # both ranks wrote into one run directory
    assert Path(result["run_dir"]) == run_dir
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    epochs = {r["epoch"] for r in runs.read_metrics(run_dir) if r["split"] == "train"}
    assert epochs == set(range(3 if command == "train" else 1))
