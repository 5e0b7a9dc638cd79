"""The numpy preprocessing of the ONNX path equals the training (torch) path bit for bit; inputs expand right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from marsvision.data.imageio import read_image
from marsvision.data.preprocess import Preprocessing
from marsvision.data.synth import synthesize_paired_folder
from marsvision.inference.inputs import expand_inputs
from marsvision.inference.preprocessing import model_input, to_float
from marsvision.inference.spec import ModelSpec


@pytest.fixture(scope="module")
def terrain_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Synthetic Mars-terrain JPEGs (textured, with rover parts) plus a colour PNG of odd size."""
    root = tmp_path_factory.mktemp("terrain") / "paired"
    synthesize_paired_folder(root, num_images=3, size=96)
    colour = root / "colour.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 61, 3), dtype=np.uint8), mode="RGB").save(colour)
    return [*sorted((root / "images").iterdir()), colour]


@pytest.mark.parametrize("preset", ["plain", "paper000"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [32, 64, 96])
def test_numpy_path_equals_training_path(terrain_images: list[Path], preset: str, channels: int, size: int):
    prep = Preprocessing(preset, size, channels)
    spec = ModelSpec("segmentation", ("a", "b"), size, preset, channels)
    for path in terrain_images:
        decoded = read_image(path, channels)
        expected = prep.image_tensor(prep.resize_image(decoded)).numpy()
        actual = model_input(decoded, spec)
        assert actual.dtype == np.float32 and actual.shape == (channels, size, size)
        np.testing.assert_array_equal(actual, expected)
    if preset == "paper000":  # the brightening really happened (and clipped)
        assert to_float(np.full((2, 2, 1), 200, np.uint8), preset).max() == 1.0


def test_expand_inputs_folders_globs_duplicates_and_missing(tmp_path: Path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    image = Image.new("L", (4, 4))
    for name in ("a/x.png", "a/sub/x.png", "a/y.jpg", "b.png"):
        image.save(tmp_path / name)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    images, failed = expand_inputs(
        [
            str(tmp_path / "a"),
            str(tmp_path / "*.png"),
            str(tmp_path / "a" / "x.png"),  # already listed through the folder: once only
            str(tmp_path / "b.png"),
            str(tmp_path / "missing.png"),
            str(tmp_path / "empty"),
            str(tmp_path / "*.tif"),
        ]
    )
    assert [(i.path.relative_to(tmp_path).as_posix(), i.key) for i in images] == [
        ("a/sub/x.png", "sub/x"),
        ("a/x.png", "x"),
        ("a/y.jpg", "y"),
        ("b.png", "b"),
    ]
    assert [f["path"] for f in failed] == [str(tmp_path / n) for n in ("missing.png", "empty", "*.tif")]
    images, _ = expand_inputs([str(tmp_path / "a" / "x.png"), str(tmp_path / "a" / "sub" / "x.png")])
    assert [i.key for i in images] == ["x", "x-2"]  # same stem from two places: outputs do not collide
