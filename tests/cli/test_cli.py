from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marsvision.cli import app

COMMANDS = [
    ["data", "synth"],
    ["data", "inspect"],
    ["pretrain"],
    ["train"],
    ["evaluate"],
    ["predict"],
    ["export"],
    ["sweep"],
    ["report"],
    ["demo"],
    ["recipes"],
    ["methods"],
    ["model-info"],
]
runner = CliRunner()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_explains_itself(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    usage = next(i for i, line in enumerate(lines) if line.startswith("Usage:"))
    summary = []
    for line in lines[usage + 1 :]:
        if line.startswith("╭"):
            break
        summary.append(line)
    assert len(" ".join(summary).strip()) > 15, f"no one-line explanation for {command}"


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    for command in {c[0] for c in COMMANDS}:
        assert command in result.output


def test_recipes_lists_each_with_a_line_and_as_json():
    result = runner.invoke(app, ["recipes"])
    lines = result.output.strip().splitlines()
    assert any(line.startswith("finetune-ai4mars ") for line in lines)
    listing = json.loads(runner.invoke(app, ["recipes", "--json"]).stdout)
    assert "wang-seg-ai4mars" in listing and "wang-cls-msl" in listing
    assert all(listing.values())


def test_methods_lists_every_registered_method_with_what_it_declares():
    from marsvision.training.registry import METHODS
    from marsvision.training.unimatch import UniMatchSegmentation

    listing = json.loads(runner.invoke(app, ["methods", "--json"]).stdout)
    assert sorted(listing) == sorted(METHODS)
    assert listing["seg-unimatch"]["task"] == "segmentation"
    assert listing["seg-unimatch"]["streams"] == list(UniMatchSegmentation.streams)
    assert listing["wang-cls"]["loss_weights"]["similarity"] == "classification.unsupervised_weight"
    only_pretrain = json.loads(runner.invoke(app, ["methods", "--task", "pretrain", "--json"]).stdout)
    assert sorted(only_pretrain) == ["densecl", "simclr"]
    table = runner.invoke(app, ["methods"]).output.splitlines()
    assert len(table) == len(METHODS) and table[0].split()[:3] == ["simclr", "pretrain", "simclr-views"]
    assert runner.invoke(app, ["methods", "--task", "nope"]).exit_code == 1


def test_model_info_json_gives_the_paper_sizes():
    result = runner.invoke(app, ["model-info", "r50_2x_sk1", "--classes", "6", "--json"])
    info = json.loads(result.stdout)
    assert (info["trainable_params"], info["bn_running_stats"], info["total_with_bn_stats"]) == (
        171_046_784,
        125_376,
        171_172_160,
    )


def test_synth_then_inspect_round_trip_as_json(tmp_path: Path):
    out = tmp_path / "synth"
    result = runner.invoke(
        app, ["data", "synth", str(out), "--kind", "ai4mars", "--num-images", "6", "--size", "32", "--json"]
    )
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    info = json.loads(runner.invoke(app, ["data", "inspect", str(out), "--json"]).stdout)
    assert info["format"] == "ai4mars"


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path):
    command = [sys.executable, "-m", "marsvision.cli", "train", "-r", "finetune-ai4mars", "optim.lrr=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("marsvision: error: unknown config key 'optim.lrr'")
    assert "Traceback" not in done.stderr


def test_resume_refuses_overrides(tmp_path: Path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path), "optim.lr=1"])
    assert isinstance(result.exception, ValueError)
    assert "saved config" in str(result.exception)


def test_a_run_started_from_python_records_the_command_main_was_given(
    paired_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from marsvision.cli import main

    args = [
        "train",
        "-r",
        "demo-label-fractions",
        "data.dataset=paired-folder",
        f"data.root={paired_folder}",
        "data.class_mode=terrain4",
        "data.image_size=32",
        "data.test_holdout=2",
        "model.encoder=r18_0.25x_sk0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.device=cpu",
        f"runs_root={tmp_path / 'runs'}",
        "--json",
    ]
    with pytest.raises(SystemExit) as exit_:
        main(args)

    assert exit_.value.code == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    meta = json.loads((Path(result["run_dir"]) / "meta.json").read_text())
    assert meta["command"] == ["marsvision", *args]  # not the test runner's own sys.argv
