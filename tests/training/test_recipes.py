"""The bundled recipes run the papers' set-ups: data splits, sweep grids and the arms they compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marsvision.cli import app
from marsvision.data.synth import synthesize_msl_v1
from marsvision.training.config import list_recipes, load_config, recipe_chain
from marsvision.training.data import reader
from marsvision.training.sweep import grid_points

PAPER_CLASSIFICATION = [
    name
    for name in list_recipes()
    if "wang-cls-msl" in [*recipe_chain(name)[1:], name] and "cpu" not in name and "chronological" not in name
]


def test_paper_classification_recipes_reshuffle_train_and_val():
    assert {"wang-cls-msl", "cls-ce", "wang-cls-lambda-s", "wang-cls-backbones"} <= set(PAPER_CLASSIFICATION)
    for name in PAPER_CLASSIFICATION:
        assert load_config(name).data.reshuffle_trainval is not None, name
    assert load_config("wang-cls-msl-chronological").data.reshuffle_trainval is None
    assert load_config("wang-cls-msl-cpu").data.reshuffle_trainval is None  # the CPU study: train → official val


def test_the_reshuffled_training_split_draws_from_train_and_val(tmp_path: Path):
    root = synthesize_msl_v1(tmp_path / "msl", num_images=60, size=16, seed=0)["root"]
    paper = load_config("wang-cls-msl", [f"data.root={root}"]).data
    chronological = load_config("wang-cls-msl-chronological", [f"data.root={root}"]).data
    official = {split: set(reader(chronological, split).ids) for split in ("train", "val", "test")}
    shuffled = set(reader(paper, "train").ids)
    assert len(shuffled) == len(official["train"]), "the new training split keeps the official size"
    assert shuffled & official["val"] and shuffled <= official["train"] | official["val"]
    assert set(reader(paper, "test").ids) == official["test"], "the test list is unchanged"


def test_tables_6_and_7_sweep_the_papers_weights():
    table6 = load_config("wang-cls-lambda-s")
    assert table6.sweep.grid == {"classification.supervised_weight": [0.3, 0.5, 1.0, 2.0, 5.0]}
    assert table6.classification.unsupervised_weight == 0.0
    table7 = load_config("wang-cls-lambda-u")
    assert table7.sweep.grid == {"classification.unsupervised_weight": [0.0, 0.1, 0.2, 0.5, 1.0]}
    assert table7.classification.supervised_weight == 1.0


def test_the_pretrained_arm_of_paper_000_is_a_grid_value_the_command_line_sets(tmp_path: Path):
    grid = load_config("goh-label-fractions").sweep.grid
    assert grid["model.weights"] == [None, "r50_2x_sk1.pt"], "the public SimCLRv2 ImageNet checkpoint, converted"
    overridden = load_config("goh-label-fractions", ["sweep.grid.model.weights=[null, latest:simclr-ai4mars]"])
    assert overridden.sweep.grid["model.weights"] == [None, "latest:simclr-ai4mars"]
    assert len(grid_points(overridden.sweep.grid)) == 14
    shown = CliRunner().invoke(
        app,
        ["sweep", "-r", "goh-label-fractions", "sweep.grid.model.weights=[null,/w/r50.pt]", "--print-config", "--json"],
    )
    assert shown.exit_code == 0, shown.output
    assert '"model.weights": [null, "/w/r50.pt"]' in shown.output


def test_a_sweep_checks_every_weights_file_before_it_starts(tmp_path: Path):
    from marsvision.training.sweep import run_sweep

    with pytest.raises(FileNotFoundError, match=r"nowhere\.pt: weights file not found"):
        run_sweep("goh-label-fractions", ["sweep.grid.model.weights=[null,/nowhere.pt]"], out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_every_table_of_paper_002_and_the_figures_have_recipes_by_number():
    runner = CliRunner()

    def listed(*options: str) -> set[str]:
        shown = runner.invoke(app, ["recipes", *options, "--json"])
        assert shown.exit_code == 0, shown.output
        return set(json.loads(shown.output))

    for table in range(3, 12):
        assert listed("--table", str(table)), f"no recipe names Table {table}"
    assert {"cls-supcon-linear", "cls-supcon-all-layers", "cls-alexnet", "wang-cls-msl", "cls-sscl"} <= listed(
        "--table", "3"
    )
    assert {"cls-ce-strong-aug", "cls-infonce", "wang-cls-ablation"} <= listed("--table", "4")
    assert {"wang-cls-backbones", "cls-ce-backbones"} <= listed("--table", "5")
    assert {"wang-seg-ai4mars", "wang-seg-supervised"} <= listed("--figure", "12")
    assert {"goh-label-fractions"} <= listed("--figure", "9") and "cls-ce" in listed("--figure", "10")
    assert "wang-seg-ai4mars" not in listed("--figure", "3")
