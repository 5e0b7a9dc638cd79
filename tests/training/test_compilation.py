"""``trainer.compile``: compiled networks train like eager ones; without a compiler the run stays eager."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from marsvision.training import compilation, lightning_base
from marsvision.training.api import train
from marsvision.training.compilation import compile_networks, compiler_missing
from marsvision.training.config import load_config


class Tiny(nn.Module):
    """A network child (conv, BatchNorm, ReLU, pooling, linear) and a parameter-free loss child."""

    def __init__(self) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        )
        self.loss = nn.CrossEntropyLoss()

    def step(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
        self.zero_grad()
        loss = self.loss(self.network(images), targets)
        loss.backward()
        return float(loss.detach()), [p.grad.clone() for p in self.parameters()]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.skipif(compiler_missing(torch.device("cpu")) is not None, reason="no C++ compiler for inductor")
def test_compiled_step_agrees_with_eager_and_keeps_the_state_dict():
    torch.manual_seed(0)
    eager = Tiny()
    compiled = Tiny()
    compiled.load_state_dict(eager.state_dict())
    keys = list(compiled.state_dict())
    assert compile_networks(compiled, torch.device("cpu")) == ["network"]  # the loss holds no parameters
    assert list(compiled.state_dict()) == keys, "compiling in place keeps checkpoints loadable"
    images, targets = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 1])
    for _ in range(2):  # BatchNorm's running statistics move alike too
        eager_loss, eager_grads = eager.step(images, targets)
        compiled_loss, compiled_grads = compiled.step(images, targets)
        assert compiled_loss == pytest.approx(eager_loss, rel=1e-5, abs=1e-6)
        for ours, reference in zip(compiled_grads, eager_grads, strict=True):
            torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(compiled.network[1].running_mean, eager.network[1].running_mean)


def test_without_a_compiler_the_networks_stay_eager_and_one_line_says_so(monkeypatch, caplog):
    monkeypatch.delenv(compilation.CXX_ENV, raising=False)
    monkeypatch.setattr(compilation.shutil, "which", lambda name: None)
    assert compiler_missing(torch.device("cpu")) == "no C++ compiler found (g++ or clang++ or c++)"
    module = Tiny()
    with caplog.at_level(logging.WARNING, logger="marsvision"):
        assert compile_networks(module, torch.device("cpu")) == []
    assert [r.getMessage() for r in caplog.records] == [
        "marsvision: trainer.compile: no C++ compiler found (g++ or clang++ or c++); training eagerly"
    ]


@pytest.mark.usefixtures("one_thread")
def test_the_switch_compiles_the_methods_networks_when_fitting_starts(paired_folder, tmp_path, monkeypatch):
    compiled: list[list[str]] = []

    def record(module: nn.Module, device: torch.device) -> list[str]:
        names = [name for name, child in module.named_children() if any(True for _ in child.parameters())]
        compiled.append(names)
        return names

    monkeypatch.setattr(lightning_base, "compile_networks", record)
    overrides = [
        "method=simclr",
        f"data.root={paired_folder}",
        f"runs_root={tmp_path}",
        "data.image_size=32",
        "data.batch_size=4",
        "model.encoder=r18_0.25x_sk0",
        "model.projection_dim=8",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.device=cpu",
        "trainer.progress_bar=false",
    ]
    train(load_config(None, overrides))
    assert compiled == []
    train(load_config(None, [*overrides, "trainer.compile=true"]))
    assert compiled == [["encoder", "projection_head"]]
