"""The main job end to end in its reduced (CI) size: every step leaves what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from PIL import Image

from marsvision.demo import run_demo


def test_quick_demo_runs_the_whole_mission(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    summary = run_demo(out, quick=True, data="synthetic")
    printed = capsys.readouterr().out
    assert "marsvision demo — results" in printed and "report:" in printed
    assert summary["segmentation_data"].startswith("synthetic")
    steps = [row["step"] for row in summary["table"]]
    assert steps[:4] == [
        "fine-tune 10% random init",
        "fine-tune 10% pretrained",
        "fine-tune 100% random init",
        "fine-tune 100% pretrained",
    ]
    assert all(row["value"] is not None and 0.0 <= row["value"] <= 1.0 for row in summary["table"])
    assert Path(summary["pretrain_run"], "encoder.pt").is_file()
    labels = sorted(Path(summary["predictions"], "labels").glob("*.png"))
    assert summary["predicted_images"] == 4 and len(labels) == 4
    assert len(list(Path(summary["predictions"], "overlays").glob("*.png"))) == 4
    assert summary["onnx_max_abs_diff"] < 1e-3
    onnx.checker.check_model(onnx.load(summary["onnx"]))
    for html in summary["reports"].values():
        page = Path(html).read_text()
        assert page.count("<img") >= 3 and 'src="data:image/png;base64,' in page
    rows = json.loads((out / "runs" / "demo-label-fractions" / "results.json").read_text())
    assert len(rows) == 4
    assert Image.open(labels[0]).mode == "L"
