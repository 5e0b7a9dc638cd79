"""Checkpoints and recipes of marsvision 0.1 (``task``, ``segbaseline.method``, ``classification.loss``) still load.

The fixtures in ``tests/fixtures/old-checkpoints`` are the hyper-parameters and state-dict shapes of checkpoints
written by marsvision 0.1 (commit baa265c) for each kind of run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.lightning_base import MarsvisionModule
from marsvision.training.registry import method_class

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "old-checkpoints"
EXPECTED = {
    "seg": "seg-supervised",
    "semiseg": "wang-seg",
    "segcutmix": "seg-cutmix-teacher",
    "simclr": "simclr",
    "cls": "cls-focal",
}


@pytest.mark.parametrize(("fixture", "method"), sorted(EXPECTED.items()))
def test_old_checkpoints_rebuild_their_module_and_load_strictly(fixture: str, method: str, capsys):
    saved = json.loads((FIXTURES / f"{fixture}.json").read_text())
    hparams = saved["hyper_parameters"]
    assert "task" in hparams["config"], "the fixture holds the old keys"
    config = MarsvisionModule.config_from_hparams(hparams)
    assert config.method == method
    module = method_class(config.method)(config, ClassInfo.from_hparams(hparams))
    shapes = {key: list(value.shape) for key, value in module.state_dict().items()}
    assert shapes == saved["state_dict_shapes"]
    module.load_state_dict({key: torch.zeros(shape) for key, shape in saved["state_dict_shapes"].items()})


@pytest.mark.parametrize(
    ("overrides", "method"),
    [
        (["task=pretrain"], "simclr"),
        (["task=semiseg"], "wang-seg"),
        (["task=segmentation"], "seg-supervised"),
        (["task=segmentation", "segbaseline.method=mean-teacher"], "seg-mean-teacher"),
        (["task=classification"], "wang-cls"),
        (["classification.loss=supcon"], "cls-supcon"),
    ],
)
def test_old_overrides_map_to_the_method_and_say_so(overrides: list[str], method: str):
    assert load_config("wang-cls-msl", overrides).method == method


def test_an_old_recipe_file_loads(tmp_path: Path):
    recipe = tmp_path / "old.yaml"
    recipe.write_text(
        "base: wang-seg-ai4mars\ntask: segmentation\nsegbaseline:\n  method: cutout\n  cutout_ratio: 0.25\n"
    )
    config = load_config(str(recipe), [])
    assert config.method == "seg-cutout-teacher" and config.segbaseline.cutout_ratio == 0.25
