"""What the commands print: stdout holds only the result (one JSON object with --json, else a short table),
stderr one plain line per epoch and the sweep's progress, and none of Lightning's per-run boilerplate."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import onnx
import pytest
from cli_walkthrough import Walkthrough, marsvision, marsvision_on_a_terminal
from PIL import Image

from marsvision.demo import closing_table

JSON_STEPS = [
    "data synth",
    "data inspect",
    "recipes",
    "model-info",
    "pretrain",
    "train",
    "evaluate",
    "predict",
    "export",
    "predict onnx",
    "sweep",
    "report",
    "semiseg",
]
BOILERPLATE = [
    "GPU available",
    "TPU available",
    "Tip:",
    "litlogger",
    "limit_train_batches",
    "LeafSpec",
    "log_every_n_steps",
    "Trainer.fit` stopped",
    "Loading `train_dataloader`",
    "site-packages",
]
PYTHON_REPRS = re.compile(r"\{'|\['|: \[\]|: None\b|\bNone$")


@pytest.mark.parametrize("step", JSON_STEPS)
def test_json_output_is_exactly_one_object_on_stdout(walkthrough: Walkthrough, step: str):
    done = walkthrough.steps[step]
    assert isinstance(json.loads(done.stdout), dict), done.stdout[:300]
    assert len(done.stdout.strip().splitlines()) == 1
    assert "\r" not in done.stdout and "\r" not in done.stderr


@pytest.mark.parametrize("step", JSON_STEPS)
def test_lightning_boilerplate_is_silenced(walkthrough: Walkthrough, step: str):
    stderr = walkthrough.steps[step].stderr
    for line in BOILERPLATE:
        assert line not in stderr, f"{step} printed {line!r}:\n{stderr}"


def test_outside_a_terminal_each_epoch_is_one_plain_line_with_its_metrics(walkthrough: Walkthrough):
    lines = walkthrough.steps["train"].stderr.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"], lines
    assert all("train/loss" in line and "val/acc" in line and "%" in line for line in epochs)
    assert "model.weights=latest:demo-simclr → " in walkthrough.steps["train"].stderr


def test_data_synth_and_inspect_say_where_they_are_in_a_few_plain_lines(tmp_path: Path):
    synth = marsvision("data", "synth", tmp_path / "mars", "--num-images", "12", "--size", "32", "--json")
    inspect = marsvision("data", "inspect", tmp_path / "mars", "--json")
    assert synth.stderr.splitlines() == ["synth msl: 12 images"]
    assert [line.split(":")[0] for line in inspect.stderr.splitlines()] == [
        "inspect train",
        "inspect test-min1",
        "inspect test-min2",
        "inspect test-min3",
    ]
    for done in (synth, inspect):
        assert done.returncode == 0 and isinstance(json.loads(done.stdout), dict)
        assert "\r" not in done.stderr


def test_on_a_terminal_progress_is_a_live_bar_on_stderr(tmp_path: Path):
    done = marsvision_on_a_terminal("data", "synth", tmp_path / "mars", "--num-images", "12", "--size", "32", "--json")
    assert done.returncode == 0, done.stderr
    assert "\r" in done.stderr and "synth msl" in done.stderr and "12/12" in done.stderr
    assert json.loads(done.stdout)["msl"]["train"] + json.loads(done.stdout)["msl"]["test"] == 12


def test_evaluate_says_where_it_is_outside_a_terminal_in_one_plain_line(walkthrough: Walkthrough):
    assert walkthrough.steps["evaluate"].stderr.splitlines() == ["evaluate test: 1 batch"]


def test_the_semi_supervised_run_names_its_stage(walkthrough: Walkthrough):
    stderr = walkthrough.steps["semiseg"].stderr
    for stage in ("stage 1/3: contrastive", "stage 2/3: joint", "stage 3/3: pseudo"):
        assert stage in stderr, stderr


def test_a_sweep_says_which_run_it_is_on_and_what_it_skips(walkthrough: Walkthrough):
    first = walkthrough.steps["sweep"].stderr
    assert "run 1/2: label_fraction=0.5, seed=0" in first and "run 2/2: label_fraction=1.0, seed=0" in first
    again = walkthrough.steps["sweep again"]
    assert "run 1/2: label_fraction=0.5, seed=0 finished before, skipped" in again.stderr
    assert "epoch " not in again.stderr
    header, *rows = again.stdout.splitlines()[2:]
    assert header.split()[:3] == ["setting", "seeds", "acc"]
    assert rows[0].startswith("label_fraction=0.5  1 ") and "±" not in again.stdout  # one seed: no "± 0.00"


def test_results_print_as_a_short_table_naming_the_split(walkthrough: Walkthrough):
    run = walkthrough.run_dir("demo-finetune-")
    done = marsvision("evaluate", run)
    assert done.returncode == 0, done.stderr
    assert "held-out" in done.stdout or "test split (" in done.stdout
    assert re.search(r"ACC \(pixel accuracy\)\s+\d+\.\d\d %", done.stdout), done.stdout
    assert re.search(r"labeled pixels\s+[\d,]+", done.stdout)
    assert not PYTHON_REPRS.search(done.stdout), done.stdout
    listed = json.loads(walkthrough.steps["evaluate"].stdout)
    assert listed["split"] == "test" and listed["split_images"] == 2


def test_predict_prints_no_python_reprs(walkthrough: Walkthrough, tmp_path):
    run = walkthrough.run_dir("demo-finetune-")
    images = walkthrough.data / "msl" / "images" / "edr"
    done = marsvision("predict", "--checkpoint", run, images, "--out", tmp_path / "p")
    assert done.returncode == 0, done.stderr
    assert re.search(r"written\s+16", done.stdout) and re.search(r"failed\s+none", done.stdout)
    assert not PYTHON_REPRS.search(done.stdout), done.stdout
    assert "tile" not in done.stdout  # None values are left out


def test_verbose_brings_lightning_lines_back(walkthrough: Walkthrough):
    done = marsvision(
        "train",
        "-r",
        "demo-label-fractions",
        f"data.root={walkthrough.data}",
        "data.image_size=32",
        f"runs_root={walkthrough.root / 'verbose'}",
        "trainer.device=cpu",
        "trainer.max_epochs=1",
        "--json",
        "--verbose",
    )
    assert done.returncode == 0, done.stderr
    assert "GPU available" in done.stderr
    json.loads(done.stdout)


def test_version_and_recipe_discovery():
    version = marsvision("--version")
    assert re.fullmatch(r"marsvision \d+\.\d+\.\d+\S*\n", version.stdout)
    shown = marsvision("recipes", "wang-seg-cutmix")
    assert shown.returncode == 0
    assert (
        "base     wang-seg-supervised" in shown.stdout
        and "run with marsvision train -r wang-seg-cutmix" in shown.stdout
    )
    assert "method: seg-cutmix-teacher" in shown.stdout
    table8 = marsvision("recipes", "--table", "8", "--json")
    assert set(json.loads(table8.stdout)) >= {"wang-seg-cutmix", "wang-seg-reco", "wang-seg-supervised"}
    assert not any(name.startswith("wang-cls") for name in json.loads(table8.stdout))
    word = json.loads(marsvision("recipes", "simclr", "--json").stdout)
    assert "demo-simclr" in word and "wang-seg-cutmix" not in word
    sweep = marsvision("recipes", "demo-label-fractions")
    assert "run with marsvision sweep -r demo-label-fractions" in sweep.stdout


def test_print_config_shows_the_resolved_config_and_accepts_lightning_style_overrides(tmp_path):
    done = marsvision(
        "train",
        "-r",
        "demo-label-fractions",
        "--trainer.max_epochs=3",
        f"runs_root={tmp_path}",
        "--print-config",
        "--json",
    )
    config = json.loads(done.stdout)
    assert config["trainer"]["max_epochs"] == 3 and config["name"] == "demo-finetune"
    assert not list(tmp_path.iterdir())  # nothing trained, no folder
    text = marsvision("pretrain", "-r", "demo-simclr", "--print-config").stdout
    assert "method: simclr" in text


def test_sweep_takes_devices():
    done = marsvision("sweep", "-r", "demo-label-fractions", "--devices", "2", "--print-config", "--json")
    assert json.loads(done.stdout)["trainer"]["devices"] == 2


def test_compare_without_out_writes_a_new_folder_not_into_a_run(walkthrough: Walkthrough, tmp_path: Path):
    runs = sorted(p for p in walkthrough.sweep.iterdir() if p.is_dir() and p.name.startswith("demo-"))
    no_features = shutil.ignore_patterns("features.npz")  # 32-px test images give too few points for a t-SNE
    first, second = (shutil.copytree(run, tmp_path / run.name, ignore=no_features) for run in runs)
    before = sorted(p.name for p in first.rglob("*"))
    done = marsvision("report", "--compare", first, second, "--json")
    assert done.returncode == 0, done.stderr
    figure = Path(json.loads(done.stdout)["per_class"])
    assert figure.is_file() and figure.parent.parent == tmp_path and figure.parent.name.startswith("compare-")
    assert sorted(p.name for p in first.rglob("*")) == before


def test_the_quick_demo_runs_the_whole_mission_and_prints_one_json_object(tmp_path: Path):
    done = marsvision("demo", "--quick", "--json", "--out", tmp_path / "demo")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert "\r" not in done.stdout + done.stderr
    for line in BOILERPLATE:
        assert line not in done.stderr, line
    assert summary["segmentation_data"].startswith("synthetic")
    steps = [row["step"] for row in summary["table"]]
    assert len(steps) == 6 and steps[:4] == [
        "fine-tune 10% random init",
        "fine-tune 10% pretrained",
        "fine-tune 100% random init",
        "fine-tune 100% pretrained",
    ]
    assert all(row["value"] is not None and 0.0 <= row["value"] <= 1.0 for row in summary["table"])
    assert Path(summary["pretrain_run"], "encoder.pt").is_file()
    labels = sorted(Path(summary["predictions"], "labels").glob("*.png"))
    assert summary["predicted_images"] == 4 and len(labels) == 4
    assert Image.open(labels[0]).mode == "L"
    assert len(list(Path(summary["predictions"], "overlays").glob("*.png"))) == 4
    assert summary["onnx_max_abs_diff"] < 1e-3
    onnx.checker.check_model(onnx.load(summary["onnx"]))
    for html in summary["reports"].values():
        page = Path(html).read_text()
        assert page.count("<img") >= 3 and 'src="data:image/png;base64,' in page
    rows = json.loads((tmp_path / "demo" / "runs" / "demo-label-fractions" / "results.json").read_text())
    assert len(rows) == 4
    table = closing_table(summary)
    assert "marsvision demo — results" in table and f"report: {summary['reports']['sweep']}" in table


def test_runs_and_tables_are_written_with_the_usual_permissions(walkthrough: Walkthrough):
    umask = os.umask(0)
    os.umask(umask)
    run = walkthrough.run_dir("demo-finetune-")
    for path in (run / "config.yaml", run / "meta.json", walkthrough.root / "pred" / "areas.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
