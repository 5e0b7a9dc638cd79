"""What a failed or resumed run leaves behind: a FAILED mark that ``latest:`` skips, no stale temp files after a
resume, one test record however often a finished run is resumed, and the ``latest:`` target in meta.json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from test_train_resume import tiny_config

from crash import CrashAtEpoch, CrashError
from marsvision import runfolder
from marsvision.training import api, runs
from marsvision.training.api import train
from marsvision.training.factory import resolve_weights
from marsvision.training.trainer import build_trainer


def test_a_crashed_run_is_marked_failed_and_resume_clears_the_mark_and_stale_temp_files(
    paired_folder: Path, tmp_path: Path, monkeypatch
):
    def crashing_trainer(*args, **kwargs):
        kwargs["extra_callbacks"] = [CrashAtEpoch(1)]
        return build_trainer(*args, **kwargs)

    monkeypatch.setattr(api, "build_trainer", crashing_trainer)
    with pytest.raises(CrashError):
        train(tiny_config(paired_folder, tmp_path / "runs", epochs=2))
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "CrashError: simulated crash at the start of epoch 1" in (run_dir / runfolder.FAILED_FILE).read_text()
    stale = run_dir / runfolder.CHECKPOINT_DIR / ".last.ckpt.k1ll3d.tmp"  # what a write killed mid-way leaves
    stale.write_bytes(b"\0" * 1024)
    train(None, resume=run_dir)
    assert not stale.exists() and not (run_dir / runfolder.FAILED_FILE).exists()
    assert (run_dir / runfolder.RESULT_FILE).is_file()


def test_resuming_a_finished_run_adds_no_second_test_record(paired_folder: Path, tmp_path: Path):
    first = train(tiny_config(paired_folder, tmp_path / "runs", epochs=1))
    run_dir = Path(first["run_dir"])
    before = (run_dir / runfolder.METRICS_FILE).read_text()
    again = train(None, resume=run_dir)
    assert again == first
    assert (run_dir / runfolder.METRICS_FILE).read_text() == before
    assert sum(r["stage"] == "eval" for r in runs.read_metrics(run_dir)) == 1


def _pretraining_run(root: Path, name: str, age_s: float, failed: bool = False) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    encoder = run_dir / runfolder.ENCODER_FILE
    encoder.write_bytes(b"weights")
    stamp = time.time() - age_s
    os.utime(encoder, (stamp, stamp))
    if failed:
        (run_dir / runfolder.FAILED_FILE).write_text("RuntimeError: boom\n")
    return encoder


def test_latest_skips_a_failed_run(tmp_path: Path):
    good = _pretraining_run(tmp_path, "simclr-20260101-000000", age_s=60)
    _pretraining_run(tmp_path, "simclr-20260101-000100", age_s=0, failed=True)
    assert resolve_weights("latest:simclr", str(tmp_path)) == good.resolve()


def test_latest_is_recorded_in_the_new_run_meta(paired_folder: Path, tmp_path: Path):
    runs_root = tmp_path / "runs"
    pretraining = tiny_config(paired_folder, runs_root, epochs=1, name="pre")
    pretraining.method, pretraining.data.dataset = "simclr", "unlabeled-folder"
    pretrain = train(pretraining)
    finetuning = tiny_config(paired_folder, runs_root, epochs=1)
    finetuning.model.weights = "latest:pre"
    result = train(finetuning)
    meta = json.loads((Path(result["run_dir"]) / runfolder.META_FILE).read_text())
    resolved = meta["resolved"]["model.weights"]
    assert resolved["reference"] == "latest:pre"
    assert Path(resolved["file"]) == (Path(pretrain["run_dir"]) / runfolder.ENCODER_FILE).resolve()
    assert resolved["run"] == Path(pretrain["run_dir"]).name
