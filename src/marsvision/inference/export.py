"""``marsvision export``: a checkpoint's logits network → ONNX, with metadata, checked against PyTorch.

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. The dynamo exporter needs
``onnxscript``, which is not a dependency and may be missing offline; the TorchScript one works with torch
2.14 on its own (it warns that it is deprecated; the warning is silenced here). Opset 17.

``fp16``: weights are stored as float16 and cast to float32 by ``Cast`` nodes at load, so the file is about
half the size while inputs, outputs and arithmetic stay float32 and run on any onnxruntime CPU build (CPU
kernels for half convolutions are not universal, and ``onnxconverter-common`` is not a dependency). Expect
differences to PyTorch of about 1e-3 relative; pass a looser ``tolerance`` accordingly.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from marsvision.atomic import atomic_write_bytes
from marsvision.inference.network import LogitsNetwork, load_checkpoint
from marsvision.inference.onnx_runtime import load_onnx

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
CHECK_SEED = 0
CHECK_BATCH = 2
"""Sample inputs compared between onnxruntime and PyTorch (random images in [0, 1])."""


def _to_onnx(network: LogitsNetwork, example: torch.Tensor, dynamic_batch: bool) -> onnx.ModelProto:
    dense = network.dense
    axes: dict[str, dict[int, str]] | None = None
    if dynamic_batch:
        axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript exporter, tracer warnings
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            network,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
        model = onnx.load(str(path))
    model.doc_string = f"marsvision {'segmentation' if dense else 'classification'} logits"
    return model


def weights_to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store every float32 initializer as float16 and add a ``Cast`` back to float32 in front of the graph.

    The rest of the graph keeps reading the original names, so nothing else changes.
    """
    graph = model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer).astype(np.float16)
        name = initializer.name
        half = numpy_helper.from_array(values, f"{name}__fp16")
        initializer.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    return model


def _set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def export_onnx(
    checkpoint: Path,
    onnx_path: Path,
    *,
    dynamic_batch: bool = False,
    fp16: bool = False,
    tolerance: float = 1e-3,
) -> dict[str, Any]:
    """Export ``checkpoint``'s network (logits only) to ``onnx_path`` and compare onnxruntime with PyTorch.

    The ONNX file embeds the task, class names, image size, preprocessing preset and channels in
    ``metadata_props``, so ``predict --onnx`` needs nothing else. The input is ``image`` ``float32``
    ``(N, C, S, S)``; N is 1 unless ``dynamic_batch``. The file is written atomically even when the check
    fails, so that it can be inspected.

    Returns:
        ``{"onnx", "passed", "max_abs_diff", "tolerance", "fp16", "dynamic_batch", "input_shape", "metadata"}``.
    """
    loaded = load_checkpoint(Path(checkpoint), device="cpu")
    spec = loaded.spec
    batch = CHECK_BATCH if dynamic_batch else 1
    generator = torch.Generator().manual_seed(CHECK_SEED)
    sample = torch.rand(batch, spec.channels, spec.image_size, spec.image_size, generator=generator)
    model = _to_onnx(loaded.network, sample[:1], dynamic_batch)
    if fp16:
        model = weights_to_float16(model)
    _set_metadata(model, spec.to_metadata())
    onnx.checker.check_model(model)
    onnx_path = Path(onnx_path)
    atomic_write_bytes(onnx_path, model.SerializeToString())

    with torch.no_grad():
        expected = loaded.network(sample).numpy()
    actual = load_onnx(onnx_path).logits(sample.numpy())
    max_abs_diff = float(np.abs(actual - expected).max())
    return {
        "onnx": str(onnx_path),
        "passed": bool(max_abs_diff <= tolerance),
        "max_abs_diff": max_abs_diff,
        "tolerance": tolerance,
        "fp16": fp16,
        "dynamic_batch": dynamic_batch,
        "input_shape": ["N" if dynamic_batch else 1, spec.channels, spec.image_size, spec.image_size],
        "metadata": spec.to_metadata(),
    }
