"""Paper 002 Figs 9-10: a classification run keeps its predictions and the images it got wrong; comparing two runs
draws the images the second gets right and the first wrong, and the second's failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from marsvision.cli import app
from marsvision.evaluation.report import _spread_over_classes, write_classification_examples
from marsvision.evaluation.runlogs import load_predictions
from marsvision.training.evaluate import THUMBNAIL_SIDE, ClassificationPredictions

IMAGES = torch.linspace(0, 1, 8 * 3 * 16 * 16).reshape(8, 3, 16, 16)
TARGETS = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])


def classification_run(make_run, root: Path, preds: list[int]) -> Path:
    run = make_run(root, with_qualitative=False, with_features=False)
    evaluation = json.loads((run / "eval.json").read_text())
    (run / "eval.json").write_text(json.dumps({**evaluation, "task": "classification"}))
    predictions = ClassificationPredictions()
    for half in (slice(0, 4), slice(4, 8)):  # two batches
        ids = [f"img{i}" for i in range(8)][half]
        predictions.add(IMAGES[half], ids, TARGETS[half], torch.tensor(preds[half]))
    predictions.save(run / "predictions.npz")
    return run


def test_predictions_keep_every_image_and_thumbnails_of_the_errors(tmp_path: Path, make_run):
    run = classification_run(make_run, tmp_path / "run", [0, 1, 0, 3, 1, 1, 2, 0])  # wrong at 2, 4 and 7
    saved = load_predictions(run / "predictions.npz")
    assert saved.ids == [f"img{i}" for i in range(8)] and saved.targets.tolist() == TARGETS.tolist()
    assert saved.error_positions.tolist() == [2, 4, 7]
    assert saved.error_images.shape == (3, THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3) and saved.error_images.dtype == np.uint8
    expected = torch.nn.functional.interpolate(IMAGES[[2]], size=THUMBNAIL_SIDE, mode="area")[0, 0, 0, 0] * 255
    assert abs(int(saved.error_images[0, 0, 0, 0]) - float(expected)) <= 1


def test_one_of_each_class_first():
    assert _spread_over_classes([5, 6, 7, 8], [1, 1, 2, 3], limit=3) == [5, 7, 8]
    assert _spread_over_classes([5, 6, 7, 8], [1, 1, 2, 2], limit=3) == [5, 6, 7]


def test_comparing_two_runs_draws_figures_9_and_10(tmp_path: Path, make_run):
    baseline = classification_run(make_run, tmp_path / "baseline", [1, 1, 0, 0, 0, 1, 2, 3])  # wrong at 0, 2, 3
    ours = classification_run(make_run, tmp_path / "ours", [0, 1, 2, 0, 0, 1, 2, 3])  # wrong at 3 only
    figures = write_classification_examples(baseline, ours, tmp_path / "figures")
    assert set(figures) == {"examples", "failures"} and all(path.stat().st_size > 0 for path in figures.values())
    out = tmp_path / "compare"
    shown = CliRunner().invoke(app, ["report", str(baseline), str(ours), "--compare", f"--out={out}", "--json"])
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.output)
    assert result["examples"] == str(out / "classification_examples.png")
    assert result["failures"] == str(out / "classification_failures.png")
