"""The part of a trained module that inference runs: images → logits, nothing else (PyTorch side)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from marsvision.inference.spec import ModelSpec


class LogitsNetwork(nn.Module):
    """Wrap a trained marsvision module so that ``forward(images)`` returns only the logits tensor.

    For segmentation the H_s embedding branch of the semi-supervised DeepLabv3+ is skipped (it only feeds the
    contrastive loss), so neither prediction nor the ONNX graph computes it.
    """

    def __init__(self, module: nn.Module, dense: bool) -> None:
        super().__init__()
        self.module = module
        self.dense = dense
        # Inference only: start in eval mode, so that exporters which restore the previous mode afterwards
        # (torch.onnx.export does) never switch BatchNorm and dropout of the wrapped module to training.
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        net = getattr(self.module, "model", None)
        if self.dense and net is not None and getattr(net, "has_embedding", False):
            logits: torch.Tensor = net(images, with_embedding=False)["logits"]
            return logits
        out: torch.Tensor = self.module(images)
        return out


@dataclass
class CheckpointModel:
    """A checkpoint ready for prediction: its spec and the eval-mode logits network on ``device``."""

    spec: ModelSpec
    network: LogitsNetwork
    device: torch.device

    @torch.no_grad()
    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Return logits of ``float32`` ``(N, C, S, S)`` as a float32 numpy array."""
        images = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        return self.network(images).float().cpu().numpy()


def load_checkpoint(checkpoint: Path, device: str | None = None) -> CheckpointModel:
    """Rebuild a checkpoint's network and spec from the file alone (config and class names travel inside)."""
    from marsvision.training.api import load_module

    module, config = load_module(checkpoint)
    spec = ModelSpec.from_config(
        module.task,
        list(module.hparams["class_names"]),
        config.data.image_size,
        config.data.preprocess,
        config.data.channels,
        module.hparams.get("class_ids", ()),
    )
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    network = LogitsNetwork(module, spec.dense).to(target).eval()
    return CheckpointModel(spec, network, target)
