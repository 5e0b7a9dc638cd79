"""``marsvision export`` and ``predict --onnx``: parity with PyTorch, metadata, fp16, fixed batch, CLI exit code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

import marsvision.inference
from marsvision.cli import app
from marsvision.inference.export import export_onnx
from marsvision.inference.network import load_checkpoint
from marsvision.inference.onnx_runtime import load_onnx
from marsvision.inference.predict import predict_paths

SEG_CLASSES = ["soil", "bedrock", "sand", "big rock"]


@pytest.fixture(scope="module")
def seg_onnx(seg_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("onnx") / "seg.onnx"
    return path, export_onnx(seg_checkpoint, path, dynamic_batch=True)


def test_fp32_export_matches_pytorch_and_carries_metadata(seg_onnx: tuple[Path, dict], seg_checkpoint: Path):
    path, result = seg_onnx
    assert result["passed"] and result["max_abs_diff"] < 1e-4
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["marsvision.class_names"]) == SEG_CLASSES
    assert props["marsvision.task"] == "segmentation" and props["marsvision.image_size"] == "32"
    assert props["marsvision.preprocess"] == "plain" and props["marsvision.channels"] == "1"
    model = load_onnx(path)
    assert model.spec == load_checkpoint(seg_checkpoint, device="cpu").spec
    assert model.fixed_batch is None
    # Other inputs than the export check's, batch of 3: onnxruntime and PyTorch still agree.
    batch = np.random.default_rng(1).random((3, 1, 32, 32), dtype=np.float32)
    expected = load_checkpoint(seg_checkpoint, device="cpu").logits(batch)
    assert np.abs(model.logits(batch) - expected).max() < 1e-4


def test_predict_with_onnx_writes_the_same_labels_as_the_checkpoint(
    seg_onnx: tuple[Path, dict], seg_checkpoint: Path, seg_data: Path, tmp_path
):
    images = [str(p) for p in sorted((seg_data / "images").iterdir())[:3]]
    wide = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (45, 70), dtype=np.uint8), mode="L").save(wide)
    images.append(str(wide))
    for extra in ({}, {"tile": 24, "tta": "flip"}):
        torch_out, onnx_out = tmp_path / f"t{len(extra)}", tmp_path / f"o{len(extra)}"
        a = predict_paths(images, out=torch_out, checkpoint=seg_checkpoint, batch_size=3, **extra)
        b = predict_paths(images, out=onnx_out, onnx=seg_onnx[0], batch_size=3, **extra)
        assert a["written"] == b["written"] == 4 and b["backend"] == "onnx"
        for label in sorted((torch_out / "labels").glob("*.png")):
            np.testing.assert_array_equal(
                np.array(Image.open(label)), np.array(Image.open(onnx_out / "labels" / label.name))
            )
        assert (torch_out / "areas.csv").read_text() == (onnx_out / "areas.csv").read_text()


def test_fp16_and_fixed_batch_export(seg_checkpoint: Path, seg_onnx: tuple[Path, dict], tmp_path):
    path = tmp_path / "half.onnx"
    result = export_onnx(seg_checkpoint, path, fp16=True, tolerance=5e-2)
    assert result["passed"] and 0.0 < result["max_abs_diff"] < 5e-2, result
    assert path.stat().st_size < 0.6 * seg_onnx[0].stat().st_size  # weights really stored in half
    initializers = onnx.load(str(path)).graph.initializer
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in initializers)
    model = load_onnx(path)
    assert model.fixed_batch == 1
    out = predict_paths([str(seg_checkpoint.parent)], out=tmp_path / "o", onnx=path)
    assert out["written"] == 0 and out["failed"]  # a checkpoint folder holds no images: reported, not a crash
    batch = np.random.default_rng(3).random((3, 1, 32, 32), dtype=np.float32)
    assert model.logits(batch).shape == (3, 4, 32, 32)  # fixed batch 1 is run slice by slice


def test_export_cli_fails_above_tolerance(seg_checkpoint: Path, tmp_path):
    args = ["export", "--checkpoint", str(seg_checkpoint), "--onnx", str(tmp_path / "m.onnx"), "--fp16"]
    result = CliRunner().invoke(app, [*args, "--tolerance", "1e-9", "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["passed"] is False and summary["max_abs_diff"] > 1e-9


def test_classification_export_and_onnx_predict(cls_checkpoint: Path, msl_root: Path, tmp_path):
    result = export_onnx(cls_checkpoint, tmp_path / "cls.onnx", dynamic_batch=True)
    assert result["passed"] and result["max_abs_diff"] < 1e-4
    images = [str(p) for p in sorted((msl_root / "calibrated").iterdir())[:5]]
    a = predict_paths(images, out=tmp_path / "t", checkpoint=cls_checkpoint)
    b = predict_paths(images, out=tmp_path / "o", onnx=tmp_path / "cls.onnx")
    assert a["written"] == b["written"] == 5
    rows_a = [r.split(",")[1:3] for r in (tmp_path / "t" / "predictions.csv").read_text().splitlines()[1:]]
    rows_b = [r.split(",")[1:3] for r in (tmp_path / "o" / "predictions.csv").read_text().splitlines()[1:]]
    assert rows_a == rows_b  # same top-1 class names and dataset ids (the ids travel in the ONNX metadata)


ONNX_PATH_MODULES = (
    "inference/predict",
    "inference/onnx_runtime",
    "inference/preprocessing",
    "evaluation/probabilities",
    "inference/tiling",
    "inference/resample",
    "inference/outputs",
    "inference/inputs",
    "inference/spec",
)
"""Source files under src/marsvision that ``predict --onnx`` runs."""


@pytest.mark.parametrize("name", ONNX_PATH_MODULES)
def test_onnx_path_modules_do_not_import_torch(name: str):
    """The modules ``predict --onnx`` runs name no torch import (network.py/export.py are the torch side)."""
    source = (Path(marsvision.__file__).parent / f"{name}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {m for m in imported if m.split(".")[0] == "torch" or m.endswith((".network", ".export"))} - (
        {"marsvision.inference.network"} if name == "inference/predict" else set()
    )


BLOCK_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from marsvision.cli import main
sys.argv = ["marsvision", *sys.argv[1:]]
main()
"""


def test_predict_with_onnx_runs_where_torch_cannot_be_imported(
    seg_onnx: tuple[Path, dict], seg_data: Path, tmp_path: Path
):
    """An edge install with onnxruntime and no PyTorch: ``predict --onnx`` must not need torch at all."""
    image = sorted((seg_data / "images").iterdir())[0]
    command = [sys.executable, "-c", BLOCK_TORCH, "predict", str(image), "--onnx", str(seg_onnx[0])]
    done = subprocess.run([*command, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "labels" / f"{image.stem}.png").is_file()
