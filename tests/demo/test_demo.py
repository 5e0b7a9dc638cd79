"""The main job's verdicts and its closing table (the quick demo end to end: tests/cli/test_output.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marsvision.data.errors import DatasetError
from marsvision.demo import closing_table, run_demo, smoke_test_reason


def _evaluated_run(folder: Path, confusion: list[list[int]], task: str = "segmentation") -> Path:
    folder.mkdir()
    names = ["soil", "bedrock", "sand"]
    evaluation = {"task": task, "split": "test", "class_names": names, "confusion_matrix": confusion}
    (folder / "eval.json").write_text(json.dumps(evaluation))
    return folder


def test_a_model_that_predicts_one_class_everywhere_gives_a_smoke_test_figure(tmp_path: Path):
    one_class = _evaluated_run(tmp_path / "one", [[5, 0, 0], [3, 0, 0], [2, 0, 0]])
    assert smoke_test_reason(one_class, quick=False) == "predicts soil for every pixel"
    images = _evaluated_run(tmp_path / "images", [[0, 4, 0], [0, 2, 0], [0, 1, 0]], task="classification")
    assert smoke_test_reason(images, quick=True) == "predicts bedrock for every image"
    mixed = _evaluated_run(tmp_path / "mixed", [[4, 1, 0], [1, 2, 0], [0, 0, 2]])
    assert smoke_test_reason(mixed, quick=False) is None
    assert smoke_test_reason(mixed, quick=True) == "--quick: a few epochs on tiny images"


def test_the_closing_table_marks_each_smoke_test_figure_with_its_reason():
    rows = [
        {"step": "fine-tune 10% random init", "metric": "pixel acc", "value": 0.126, "smoke_test": "predicts soil"},
        {"step": "semi-supervised classifier", "metric": "top-1", "value": 0.5, "smoke_test": None},
    ]
    summary = {
        "table": rows,
        "pretraining_verdict": "pretrained ≥ random init at every label fraction (seed 0, generated data)",
        "segmentation_data": "synthetic",
        "predictions": "p",
        "onnx": "m.onnx",
        "onnx_max_abs_diff": 0.0,
        "reports": {"sweep": "r.html"},
        "wall_time_s": 1.0,
    }
    lines = closing_table(summary).splitlines()
    first = next(line for line in lines if line.startswith("fine-tune 10%"))
    assert first.endswith("12.6 %  smoke test: predicts soil")
    assert next(line for line in lines if line.startswith("semi-supervised classifier")).endswith("50.0 %")
    assert "smoke test: the number shows that the step runs, not what the method can do" in lines


def test_the_demo_on_missing_shared_data_says_what_shared_stood_for(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MARSVISION_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=r"stood for \$MARSVISION_SHARED_DATA=.*nowhere; set"):
        run_demo(tmp_path / "out", quick=True, data="shared", show_table=False)
