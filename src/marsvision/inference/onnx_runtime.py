"""The ONNX predictor: an exported model run by onnxruntime on numpy arrays (no PyTorch in the loop)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marsvision.inference.spec import ModelSpec


def _session(path: Path) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model does not exist")
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder, not an ONNX model file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not an ONNX model")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise to a user
    try:
        return ort.InferenceSession(str(path), options, providers=ort.get_available_providers())
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, …) for a bad file
        problem = str(error).rsplit("failed:", 1)[-1].strip() or type(error).__name__
        raise ValueError(f"{path}: not a readable ONNX model ({problem})") from error


@dataclass
class OnnxModel:
    """An exported model: its spec (from ``metadata_props``) and an onnxruntime session."""

    spec: ModelSpec
    session: Any
    input_name: str
    fixed_batch: int | None
    """Batch size baked into the graph (exported without ``--dynamic-batch``), or None if any size works."""

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Return logits of ``float32`` ``(N, C, S, S)``; a fixed-batch graph is run one slice at a time."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = self.fixed_batch
        if step is None or step == len(batch):
            return np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
        if len(batch) % step:
            raise ValueError(f"the ONNX model takes batches of exactly {step}; got {len(batch)}")
        parts = [self.session.run(None, {self.input_name: batch[i : i + step]})[0] for i in range(0, len(batch), step)]
        return np.concatenate(parts).astype(np.float32, copy=False)


def load_onnx(path: Path) -> OnnxModel:
    """Open an ONNX model written by ``marsvision export``; its metadata supplies classes and preprocessing."""
    session = _session(path)
    try:
        spec = ModelSpec.from_metadata(session.get_modelmeta().custom_metadata_map)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    (first, *_) = session.get_inputs()
    batch_dim = first.shape[0]
    return OnnxModel(spec, session, first.name, batch_dim if isinstance(batch_dim, int) else None)
