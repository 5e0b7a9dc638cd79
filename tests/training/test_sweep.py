from __future__ import annotations

import json
from pathlib import Path

import pytest

from marsvision.training.sweep import grid_points, run_sweep, setting_name, summarise


def test_grid_points_are_the_full_product_in_order():
    points = grid_points({"data.label_fraction": [0.1, 1.0], "model.weights": [None, "latest:x"]})
    assert points == [
        {"data.label_fraction": 0.1, "model.weights": None},
        {"data.label_fraction": 0.1, "model.weights": "latest:x"},
        {"data.label_fraction": 1.0, "model.weights": None},
        {"data.label_fraction": 1.0, "model.weights": "latest:x"},
    ]
    assert setting_name(points[1]) == "label_fraction=0.1,weights=latest_x"


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [
        {"f": 0.1, "seed": 0, "metrics": {"acc": 0.5, "miou": None}},
        {"f": 0.1, "seed": 1, "metrics": {"acc": 0.7, "miou": 0.2}},
        {"f": 1.0, "seed": 0, "metrics": {"acc": 0.9}},
    ]
    summary = summarise(rows, ["f"])
    assert summary[0]["f"] == 0.1 and summary[0]["seeds"] == [0, 1]
    assert summary[0]["acc_mean"] == pytest.approx(0.6)
    assert summary[0]["acc_std"] == pytest.approx(0.1414213562, rel=1e-6)  # sqrt(((0.1)^2 * 2) / 1)
    assert summary[0]["miou_mean"] == 0.2 and summary[0]["miou_std"] == 0.0
    assert summary[1]["acc_std"] == 0.0


def test_sweep_runs_every_point_and_resumes_without_redoing(paired_folder: Path, tmp_path: Path, monkeypatch):
    recipe = tmp_path / "sweep.yaml"
    recipe.write_text(
        f"""
name: mini
task: segmentation
data: {{dataset: paired-folder, root: "{paired_folder}", image_size: 32, batch_size: 4, test_holdout: 2}}
model: {{encoder: r18_0.25x_sk0}}
trainer: {{max_epochs: 1, progress_bar: false, device: cpu}}
sweep: {{grid: {{data.label_fraction: [0.5, 1.0]}}, seeds: [0]}}
"""
    )
    out = tmp_path / "sweep"
    result = run_sweep(str(recipe), [], out=out)
    assert result["runs"] == 2
    rows = json.loads((out / "results.json").read_text())
    assert [r["data.label_fraction"] for r in rows] == [0.5, 1.0]
    assert all(0.0 <= r["metrics"]["acc"] <= 1.0 for r in rows)
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["data.label_fraction", "seed", "run_dir"] and "acc" in header and "wall_time_s" in header
    assert all((out / r["run_dir"] / "eval.json").is_file() for r in rows)
    calls = []
    monkeypatch.setattr("marsvision.training.sweep.train", lambda *a, **k: calls.append(a))
    assert run_sweep(str(recipe), [], out=out)["runs"] == 2
    assert calls == [], "a finished (point, seed) was trained again"
