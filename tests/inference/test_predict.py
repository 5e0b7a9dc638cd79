"""``marsvision predict`` with a checkpoint: bad files, class names, output sizes, tiling, TTA, classification."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from marsvision.cli import app
from marsvision.evaluation.palette import palette_for
from marsvision.inference.network import load_checkpoint
from marsvision.inference.outputs import LEGEND_WIDTH
from marsvision.inference.predict import Predictor, predict_paths
from marsvision.training.checkpoint import safe_torch_load

SEG_SIZE = 32  # the training size of the session's checkpoint (conftest.py)
SEG_CLASSES = ["soil", "bedrock", "sand", "big rock"]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def band_image(height: int, width: int, seed: int) -> np.ndarray:
    """An image like the training ones (8-px blocks of four brightness bands), any size."""
    rng = np.random.default_rng(seed)
    bands = rng.integers(0, 4, size=(-(-height // 8), -(-width // 8))).repeat(8, 0).repeat(8, 1)[:height, :width]
    return (bands * 60 + rng.integers(0, 20, size=bands.shape)).astype(np.uint8)


@pytest.fixture
def mixed_folder(tmp_path: Path, seg_data: Path) -> Path:
    """Two training-size images, a larger non-square one in a sub-folder, and one corrupt JPEG."""
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    for source in sorted((seg_data / "images").iterdir())[:2]:
        shutil.copy(source, folder / source.name)
    Image.fromarray(band_image(50, 77, seed=3), mode="L").save(folder / "sub" / "wide.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_corrupt_file_is_skipped_listed_and_fails_the_command(mixed_folder: Path, seg_checkpoint: Path, tmp_path):
    out = tmp_path / "out"
    args = ["predict", str(mixed_folder), "--out", str(out), "--checkpoint", str(seg_checkpoint), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["written"] == 3
    assert [f["path"] for f in summary["failed"]] == [str(mixed_folder / "broken.jpg")]
    assert "cannot decode" in summary["failed"][0]["error"]
    assert sorted(p.relative_to(out / "labels").as_posix() for p in (out / "labels").rglob("*.png")) == sorted(
        [*(p.name for p in mixed_folder.glob("NLA_*.png")), "sub/wide.png"]
    )
    assert len(read_csv(out / "areas.csv")) == 1 + 3
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_outputs_carry_training_classes_and_input_size(mixed_folder: Path, seg_checkpoint: Path, tmp_path):
    (mixed_folder / "broken.jpg").unlink()
    result = predict_paths([str(mixed_folder)], out=tmp_path / "out", checkpoint=seg_checkpoint)
    assert result["failed"] == [] and result["written"] == 3
    trained = safe_torch_load(seg_checkpoint)["hyper_parameters"]["class_names"]
    assert trained == SEG_CLASSES == result["class_names"]
    rows = read_csv(tmp_path / "out" / "areas.csv")
    assert rows[0] == ["image", "width (px)", "height (px)", *(f"{c} (pixel fraction)" for c in SEG_CLASSES)]
    by_key = {row[0]: row for row in rows[1:]}
    label = np.array(Image.open(tmp_path / "out" / "labels" / "sub" / "wide.png"))
    assert Image.open(tmp_path / "out" / "labels" / "sub" / "wide.png").mode == "L"
    assert label.shape == (50, 77) and label.dtype == np.uint8  # input size, not the 32-px training size
    assert label.max() < len(SEG_CLASSES)
    shares = [float(v) for v in by_key["sub/wide"][3:]]
    assert by_key["sub/wide"][1:3] == ["77", "50"]
    np.testing.assert_allclose(shares, np.bincount(label.ravel(), minlength=4) / label.size, atol=1e-6)
    overlay = Image.open(tmp_path / "out" / "overlays" / "sub" / "wide.png")
    assert overlay.mode == "RGB" and overlay.size == (77 + LEGEND_WIDTH, 60)  # legend: 4 rows × 14 px + 4 > 50
    pixels = np.array(overlay)
    palette = palette_for(SEG_CLASSES)
    for index in range(len(SEG_CLASSES)):  # legend swatch i has class i's colour (class-id order)
        np.testing.assert_array_equal(pixels[2 + index * 14 + 5, 77 + 4 + 5], palette[index])
    gray = np.array(Image.open(mixed_folder / "sub" / "wide.png"), dtype=np.float32)
    blend = np.round(0.5 * palette[label].astype(np.float32) + 0.5 * gray[:, :, None])
    np.testing.assert_array_equal(pixels[:50, :77], blend.astype(np.uint8))


def mosaic_cells() -> list[np.ndarray]:
    return [band_image(SEG_SIZE, SEG_SIZE, seed=10 + i)[:, :, None] for i in range(9)]


def test_tiles_that_cover_the_image_exactly_reproduce_per_cell_prediction(seg_checkpoint: Path):
    """A 3×3 mosaic of training-size images, tile = training size, no overlap: each window is one cell."""
    model = load_checkpoint(seg_checkpoint, device="cpu")
    cells = mosaic_cells()
    mosaic = np.block([[cells[3 * r + c][:, :, 0] for c in range(3)] for r in range(3)])[:, :, None]
    assert mosaic.shape == (3 * SEG_SIZE, 3 * SEG_SIZE, 1)
    per_cell = Predictor(model).labels(cells)
    expected = np.block([[per_cell[3 * r + c] for c in range(3)] for r in range(3)])
    (tiled,) = Predictor(model, tile=SEG_SIZE, overlap=0.0, batch_size=4).labels([mosaic])
    np.testing.assert_array_equal(tiled, expected)
    # With the default 25 % overlap the windows straddle cells; where no window straddles (the four corner
    # cells' outer 24×24 corners are seen only by the corner window, which equals that cell) labels agree.
    (overlapped,) = Predictor(model, tile=SEG_SIZE, batch_size=4).labels([mosaic])
    corner = slice(0, 24)
    np.testing.assert_array_equal(overlapped[corner, corner], expected[corner, corner])
    assert (overlapped == expected).mean() > 0.5


def test_default_rule_resizes_the_whole_image(seg_checkpoint: Path):
    """Without --tile a 3× image is resized to the training size: same labels as predicting the 32-px image."""
    model = load_checkpoint(seg_checkpoint, device="cpu")
    small = band_image(SEG_SIZE, SEG_SIZE, seed=7)[:, :, None]
    large = small.repeat(3, 0).repeat(3, 1)  # bilinear 96 → 32 of pixel-replicated blocks gives back `small`
    (label_small,) = Predictor(model).labels([small])
    (label_large,) = Predictor(model).labels([large])
    assert label_large.shape == (96, 96)
    np.testing.assert_array_equal(label_large, label_small.repeat(3, 0).repeat(3, 1))


def test_flip_tta_runs_and_stays_in_range(mixed_folder: Path, seg_checkpoint: Path, tmp_path):
    (mixed_folder / "broken.jpg").unlink()
    result = predict_paths([str(mixed_folder / "*.png")], out=tmp_path / "o", checkpoint=seg_checkpoint, tta="flip")
    assert result["written"] == 2 and result["tta"] == "flip"
    for path in (tmp_path / "o" / "labels").glob("*.png"):
        assert np.array(Image.open(path)).max() < len(SEG_CLASSES)
    with pytest.raises(ValueError, match="tta"):
        predict_paths([str(mixed_folder)], out=tmp_path / "x", checkpoint=seg_checkpoint, tta="rotate")


def test_classification_writes_top_k_with_descending_probabilities(cls_checkpoint: Path, msl_root: Path, tmp_path):
    images = sorted((msl_root / "calibrated").iterdir())
    hparams = safe_torch_load(cls_checkpoint)["hyper_parameters"]
    class_names, class_ids = hparams["class_names"], hparams["class_ids"]
    assert class_ids == [i for i in range(25) if i != 22]  # MSL v1's official ids, 'sun' (22) unused
    result = predict_paths([str(p) for p in images[:6]], out=tmp_path / "c", checkpoint=cls_checkpoint, batch_size=4)
    assert result["failed"] == [] and result["written"] == 6 and result["task"] == "classification"
    assert not (tmp_path / "c" / "labels").exists()
    rows = read_csv(tmp_path / "c" / "predictions.csv")
    assert rows[0] == ["image"] + [f"{kind}_{r}" for r in range(1, 6) for kind in ("class", "id", "probability")]
    for row in rows[1:]:
        names, ids, probs = row[1::3], [int(i) for i in row[2::3]], [float(p) for p in row[3::3]]
        assert ids == [class_ids[class_names.index(name)] for name in names]
        assert len(names) == 5 and set(names) <= set(class_names) and len(set(names)) == 5
        assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)
        assert sum(probs) <= 1.0 + 1e-5
