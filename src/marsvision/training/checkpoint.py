"""Checkpoints that survive a crash mid-write and load without unpickling arbitrary objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from marsvision.atomic import atomic_torch_save


def safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load`` restricted to tensors and plain containers (``weights_only=True``), with the path in errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for torn or foreign files
        raise ValueError(f"{path}: not a loadable checkpoint ({type(error).__name__}: {error})") from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with an explicit temp-file + rename write and ``weights_only`` loading."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        checkpoint: dict[str, Any] = safe_torch_load(path, map_location=map_location or "cpu")
        return checkpoint
