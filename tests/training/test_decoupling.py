"""Decoupling (cRT, LWS): stage 2 keeps the backbone as stage 1 left it and trains only the classifier part."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from epoch_states import StateAtEpochEnds, changed, record_epochs
from marsvision.data.synth import synthesize_msl_v1
from marsvision.training import api
from marsvision.training.config import load_config
from marsvision.training.decoupling import reset_linear
from marsvision.training.registry import method_class


@pytest.fixture(scope="module")
def msl_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("msl") / "msl-v1"
    synthesize_msl_v1(root, num_images=48, size=32, seed=0)
    return root


def _train(method: str, root: Path, runs: Path, monkeypatch) -> StateAtEpochEnds:
    recorder = record_epochs(monkeypatch)
    overrides = [
        f"method={method}", f"data.root={root}", f"runs_root={runs}", "data.dataset=msl-v1", "data.image_size=32",
        "data.channels=3", "data.eval_split=val", "data.val_fraction=0", "data.batch_size=8",
        "model.encoder=r18_0.25x_sk0", "model.projection_dim=8", "optim.name=adam", "optim.lr=0.01",
        "optim.schedule=step", "optim.milestones=[1]", "trainer.early_stopping_patience=null",
        "trainer.progress_bar=false", "trainer.device=cpu", "trainer.limit_train_batches=2",
        "clsbaseline.decoupling_stage_epochs=[2,2]",
    ]  # fmt: skip
    api.train(load_config(None, overrides))
    return recorder


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["cls-crt", "cls-lws"])
def test_stage_two_freezes_the_backbone_and_restarts_the_learning_rate(
    method: str, msl_root: Path, tmp_path: Path, monkeypatch
) -> None:
    recorder = _train(method, msl_root, tmp_path, monkeypatch)
    end_of_stage_one, end = recorder.states[1], recorder.states[3]
    assert changed(recorder.states[0], end_of_stage_one, "model.encoder.")  # stage 1 trains the backbone
    assert not changed(end_of_stage_one, end, "model.encoder.")  # weights and BatchNorm statistics kept
    assert not changed(end_of_stage_one, end, "model.supervised_head.")
    if method == "cls-crt":
        assert changed(end_of_stage_one, end, "model.classifier.") == {
            f"model.classifier.{p}" for p in ("weight", "bias")
        }
    else:
        assert changed(end_of_stage_one, end, "model.classifier.") == {"model.classifier.scales"}
        scales = end_of_stage_one["model.classifier.scales"]
        assert torch.equal(scales, torch.ones_like(scales))
    # stage 1: 0.01 then ×0.1 at epoch 1; stage 2: back to 0.01, then a cosine towards 0 over its 4 steps
    lrs = recorder.lrs
    assert lrs[:4] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    assert lrs[4:] == pytest.approx([0.01 * 0.5 * (1 + math.cos(k * math.pi / 4)) for k in range(4)])


def test_reset_linear_draws_like_nn_linear_and_replays() -> None:
    first, second = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    reset_linear(first, torch.Generator().manual_seed(5))
    reset_linear(second, torch.Generator().manual_seed(5))
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    bound = 1 / 6**0.5  # kaiming_uniform(a=√5) and the bias both draw from ±1/√fan_in
    assert first.weight.abs().max() <= bound and first.bias.abs().max() <= bound


def test_bad_stage_epochs_raise() -> None:
    config = load_config(None, ["method=cls-crt", "clsbaseline.decoupling_stage_epochs=[3]"])
    with pytest.raises(ValueError, match="decoupling_stage_epochs"):
        method_class("cls-crt")(config)
