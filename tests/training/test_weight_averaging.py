"""``trainer.ema_decay``: what a run validates, saves and tests is the moving average of its steps' weights."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from marsvision import runfolder
from marsvision.torchfiles import safe_torch_load
from marsvision.training.config import load_config
from marsvision.training.trainer import build_trainer

DECAY = 0.75


class LinearRegression(L.LightningModule):
    """One linear layer under plain SGD that keeps a float64 copy of its weights after every optimiser step."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 2)
        self.after_each_step: list[dict[str, torch.Tensor]] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        return nn.functional.mse_loss(self.layer(inputs), targets)

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        self.after_each_step.append({k: v.detach().double().clone() for k, v in self.layer.state_dict().items()})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _fit(tmp_path: Path, overrides: list[str]) -> LinearRegression:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(20, 3, generator=generator), torch.randn(20, 2, generator=generator))
    config = load_config(None, ["trainer.device=cpu", "trainer.max_epochs=1", "seed=0", *overrides])
    torch.manual_seed(0)
    module = LinearRegression()
    build_trainer(config, tmp_path, has_validation=False).fit(module, DataLoader(data, batch_size=4))
    return module


def test_the_run_ends_with_and_saves_the_exponential_moving_average_of_its_steps(tmp_path: Path) -> None:
    module = _fit(tmp_path, [f"trainer.ema_decay={DECAY}"])
    steps = module.after_each_step
    assert len(steps) == 5
    expected = dict(steps[0])  # the average starts at the first step's weights
    for weights in steps[1:]:
        expected = {name: DECAY * expected[name] + (1 - DECAY) * weights[name] for name in expected}
    saved = safe_torch_load(runfolder.last_checkpoint(tmp_path))["state_dict"]
    for name, value in expected.items():
        assert not torch.allclose(value, steps[-1][name], atol=1e-3)  # the average is not the last weights
        torch.testing.assert_close(module.layer.state_dict()[name].double(), value, rtol=0, atol=1e-6)
        torch.testing.assert_close(saved[f"layer.{name}"].double(), value, rtol=0, atol=1e-6)


def test_without_ema_decay_the_run_keeps_its_last_weights(tmp_path: Path) -> None:
    module = _fit(tmp_path, [])
    saved = safe_torch_load(runfolder.last_checkpoint(tmp_path))["state_dict"]
    for name, value in module.after_each_step[-1].items():
        torch.testing.assert_close(saved[f"layer.{name}"].double(), value, rtol=0, atol=1e-6)
