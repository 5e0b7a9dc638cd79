"""The bad-input matrix: every user mistake is one line ``marsvision: error: …`` naming the file or key and the
problem, exit status 2 (1 for partial success), no traceback, and no run folder left behind."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_walkthrough import SIZE, Walkthrough

DRIVER = Path(__file__).with_name("cli_error_driver.py")
TRAIN = [
    "train",
    "-r",
    "demo-label-fractions",
    "data.root={data}",
    f"data.image_size={SIZE}",
    "runs_root={fresh}",
    "trainer.device=cpu",
    "trainer.max_epochs=1",
]
"""A good training command line; every failed start below points at ``{fresh}``, which must stay empty."""
PREDICT = ["predict", "--checkpoint", "{run}", "{images}"]
CASES = [
    # name, command line ({…} filled in by the fixture), exit status, what the one line must say
    ("onnx text file", ["predict", "--onnx", "{tmp}/text.onnx", "{images}", "--out", "{tmp}/o"], 2,
     "text.onnx: not a readable ONNX model"),
    ("onnx empty file", ["predict", "--onnx", "{tmp}/empty.onnx", "{images}", "--out", "{tmp}/o"], 2,
     "empty.onnx: empty file (0 bytes)"),
    ("onnx truncated", ["predict", "--onnx", "{tmp}/truncated.onnx", "{images}", "--out", "{tmp}/o"], 2,
     "truncated.onnx: not a readable ONNX model"),
    ("weights corrupt", [*TRAIN, "model.weights={tmp}/corrupt.pt"], 2,
     "corrupt.pt: not a loadable weights file: truncated or not a PyTorch file"),
    ("weights pickled", [*TRAIN, "model.weights={tmp}/pickled.pt"], 2,
     "pickled.pt: not a loadable weights file: holds pickled Python objects"),
    ("weights missing", [*TRAIN, "model.weights={tmp}/nope.pt"], 2, "nope.pt: weights file not found"),
    ("latest: nothing", [*TRAIN, "model.weights=latest:never-ran"], 2, "latest:never-ran: no never-ran-*"),
    ("evaluate simclr checkpoint", ["evaluate", "{simclr}/checkpoints/last.ckpt"], 2,
     "a simclr pretraining checkpoint has no classifier"),
    ("evaluate simclr run", ["evaluate", "{simclr}"], 2, "a simclr pretraining checkpoint has no classifier"),
    ("evaluate encoder.pt", ["evaluate", "{simclr}/encoder.pt"], 2, "not a marsvision training checkpoint"),
    ("evaluate not a run", ["evaluate", "{tmp}/empty-folder"], 2, "not a marsvision run directory"),
    ("evaluate missing", ["evaluate", "{tmp}/nope"], 2, "nope: no such run directory or checkpoint"),
    ("evaluate unknown split", ["evaluate", "{run}", "--split", "nope"], 2,
     "--split 'nope' is not a split of this dataset; choose one of train, test, chronological-early"),
    ("predict out is a file", [*PREDICT, "--out", "{tmp}/a-file"], 2, "a-file: exists and is not a folder"),
    ("predict out has predictions", [*PREDICT, "--out", "{pred}"], 2, "add --overwrite"),
    ("predict missing checkpoint", ["predict", "--checkpoint", "{tmp}/nope.ckpt", "{images}", "--out", "{tmp}/o"],
     2, "nope.ckpt: checkpoint does not exist"),
    ("predict bad tta", [*PREDICT, "--out", "{tmp}/o", "--tta", "rotate"], 2, "rotate"),
    ("label fraction 0", [*TRAIN, "data.label_fraction=0.0"], 2, "data.label_fraction must be in (0, 1], got 0.0"),
    ("negative lr", [*TRAIN, "optim.lr=-1"], 2, "optim.lr must be > 0, got -1.0"),
    ("frozen random backbone", [*TRAIN, "optim.lr=0.001", "optim.backbone_lr=1.0e-6"], 2,
     "optim.backbone_lr=1e-06 with model.weights=null trains a random r18_0.25x_sk1"),
    ("batch size 0", [*TRAIN, "data.batch_size=0"], 2, "data.batch_size must be >= 1, got 0"),
    ("max epochs 0", [*TRAIN, "trainer.max_epochs=0"], 2, "trainer.max_epochs must be >= 1, got 0"),
    ("unknown key", [*TRAIN, "optim.lrr=1"], 2, "unknown config key 'optim.lrr' (did you mean 'lr'?)"),
    ("override without value", [*TRAIN, "trainer.max_epochs"], 2, "is not of the form key.sub=value"),
    ("bad root", [*TRAIN, "data.root=/nonexistent/mars"], 2, "/nonexistent/mars"),
    ("wrong layout", [*TRAIN, "data.root={tmp}/empty-folder"], 2, "empty-folder"),
    ("bare train", ["train"], 2, "`marsvision train` needs a recipe: -r NAME"),
    ("bare sweep", ["sweep"], 2, "`marsvision sweep` needs a recipe"),
    ("recipe typo", ["train", "-r", "demo-label-fraction"], 2, "did you mean 'demo-label-fractions'"),
    ("recipe file missing", ["train", "-r", "{tmp}/nope.yaml"], 2, "nope.yaml does not exist"),
    ("unknown option", ["train", "-r", "demo-label-fractions", "--jsn"], 2, "no such option --jsn"),
    ("unknown option elsewhere", ["evaluate", "{run}", "--jsn"], 2, "--jsn"),
    ("lightning style without =", ["train", "-r", "demo-label-fractions", "--trainer.max_epochs", "1"], 2,
     "written trainer.max_epochs=VALUE"),
    ("missing argument", ["evaluate"], 2, "Missing argument"),
    ("resume not a run", ["train", "--resume", "{tmp}/empty-folder"], 2, "not a marsvision run directory"),
    ("resume missing", ["train", "--resume", "{tmp}/nope"], 2, "nope: no such run directory"),
    ("report missing", ["report", "{tmp}/nope"], 2, "nope: no such run or sweep directory"),
    ("report not a run", ["report", "{tmp}/empty-folder"], 2, "empty-folder"),
    ("inspect missing root", ["data", "inspect", "{tmp}/nope"], 2, "nope: dataset root does not exist"),
    ("synth bad kind", ["data", "synth", "{tmp}/s", "--kind", "mars2020"], 2, "unknown --kind 'mars2020'"),
    ("sweep bad seeds", ["sweep", "-r", "demo-label-fractions", "--seeds", "a,b"], 2, "--seeds 'a,b'"),
    ("export missing checkpoint", ["export", "--checkpoint", "{tmp}/nope.ckpt", "--onnx", "{tmp}/x.onnx"], 2,
     "nope.ckpt"),
    ("disk full at a checkpoint", [*TRAIN, "runs_root={tmp}/full"], 2, ".ckpt: No space left on device"),
    ("cuda without a GPU", [*TRAIN, "--device", "cuda"], 2, "--device cuda: no CUDA GPU is available"),
    ("evaluate on cuda without a GPU", ["evaluate", "{run}", "--device", "cuda"], 2, "no CUDA GPU"),
    ("one unreadable image", ["predict", "--checkpoint", "{run}", "{tmp}/mixed", "--out", "{tmp}/m"], 1, "bad.png"),
]  # fmt: skip
NEEDS_NO_GPU = {"cuda without a GPU", "evaluate on cuda without a GPU"}


def run_matrix(cases: list[dict], tmp_path: Path) -> dict[str, dict]:
    """Each case through ``marsvision.cli.main`` in one subprocess (see cli_error_driver.py)."""
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(DRIVER), str(tmp_path / "cases.json"), str(tmp_path / "results.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    return {r["name"]: r for r in json.loads((tmp_path / "results.json").read_text())}


@pytest.fixture(scope="module")
def matrix(walkthrough: Walkthrough, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("matrix")
    images = walkthrough.data / "msl" / "images" / "edr"
    onnx_bytes = (walkthrough.root / "m.onnx").read_bytes()
    (tmp / "text.onnx").write_text("not a model\n")
    (tmp / "empty.onnx").write_bytes(b"")
    (tmp / "truncated.onnx").write_bytes(onnx_bytes[: len(onnx_bytes) // 3])
    (tmp / "corrupt.pt").write_text("these are not weights\n")
    torch.save({"state_dict": argparse.Namespace(weights=1)}, tmp / "pickled.pt")
    (tmp / "a-file").write_text("x")
    (tmp / "empty-folder").mkdir()
    (tmp / "mixed").mkdir()
    (tmp / "mixed" / "good.png").write_bytes(next(images.iterdir()).read_bytes())
    (tmp / "mixed" / "bad.png").write_text("not an image")
    places = {
        "tmp": tmp,
        "data": walkthrough.data,
        "images": images,
        "run": walkthrough.run_dir("demo-finetune-"),
        "simclr": walkthrough.run_dir("demo-simclr-"),
        "pred": walkthrough.root / "pred",
        "fresh": tmp / "fresh-runs",
    }
    cases = [
        {"name": name, "argv": [arg.format(**places) for arg in argv], "full_disk": name.startswith("disk full")}
        for name, argv, _, _ in CASES
        if not (name in NEEDS_NO_GPU and torch.cuda.is_available())
    ]
    return {"results": run_matrix(cases, tmp), "fresh": places["fresh"], "full": tmp / "full"}


@pytest.mark.parametrize(("name", "code", "says"), [(n, c, s) for n, _, c, s in CASES])
def test_a_mistake_is_one_line_naming_what_and_why(matrix: dict, name: str, code: int, says: str):
    if name in NEEDS_NO_GPU and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = matrix["results"][name]
    assert result["escaped"] is None, f"{name}: an exception escaped main(): {result['escaped']}"
    assert result["code"] == code, f"{name}: exit {result['code']}\n{result['stderr']}"
    assert "Traceback" not in result["stderr"] and "weights_only" not in result["stderr"]
    if code == 1:  # partial success: the result is printed, the failed input listed in it
        assert says in result["stdout"]
        return
    lines = result["stderr"].strip().splitlines()
    errors = [line for line in lines if line.startswith("marsvision: error:")]
    assert errors == [lines[-1]], f"{name}: {lines}"
    assert says in errors[0], f"{name}: {errors[0]!r} does not say {says!r}"
    assert result["stdout"] == ""


def test_a_failed_start_leaves_no_run_folder(matrix: dict):
    assert not matrix["fresh"].exists() or not list(matrix["fresh"].iterdir())


def test_a_run_that_fails_later_is_marked_failed_without_temp_files(matrix: dict):
    (run,) = matrix["full"].iterdir()
    assert "No space left on device" in (run / "FAILED").read_text()
    assert not list(run.rglob("*.tmp"))


def test_debug_shows_the_traceback(tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "marsvision.cli", "report", str(tmp_path / "nope"), "--debug"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0 and "Traceback" in done.stderr and "FileNotFoundError" in done.stderr
