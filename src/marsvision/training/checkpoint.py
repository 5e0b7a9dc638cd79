"""Checkpoints that survive a crash mid-write and load without unpickling arbitrary objects."""

from __future__ import annotations

from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from marsvision.atomic import atomic_torch_save
from marsvision.torchfiles import safe_torch_load

__all__ = ["AtomicCheckpointIO", "safe_torch_load"]


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
