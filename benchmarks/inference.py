"""Inference: latency and throughput of ``Predictor`` at 512², PyTorch eager vs ``torch.compile`` vs ONNX Runtime.

Two networks with random weights (speed does not depend on them): ``small`` (the CPU fine-tuning recipe's
encoder, ``finetune-ai4mars256-cpu``) and ``paper`` (``finetune-ai4mars``: r50_2x_sk1 + the paper's atrous
head), both at 512 px, one channel. Each backend goes through ``marsvision.inference.predict.Predictor``, so
the figures include input preprocessing, softmax, argmax and the resize of the label map back to the image:

- ``eager``: ``LogitsNetwork`` as ``predict --checkpoint`` runs it;
- ``compile``: the same network through ``torch.compile`` (compile time reported; skipped where too slow for
  the size, with the reason, and any failure recorded);
- ``onnx``: exported like ``marsvision export --dynamic-batch`` and run by onnxruntime (its providers listed).

``latency_ms``: one image per call (median). ``throughput_images_per_s``: ``batch`` images per call. CPU
always; the GPU as well at ``--size gpu`` when one is present (onnxruntime only runs there with a CUDA build).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from benchmarks.common import pick, sync
from benchmarks.overhead import _config, build_module

COMPILE_TINY = False
"""Set to compile at the tiny size too (a check that the compile path runs; slow on a CPU)."""


def _network(kind: str, size: str, device: torch.device) -> tuple[Any, Any]:
    from marsvision.inference.network import LogitsNetwork
    from marsvision.inference.spec import ModelSpec

    side = pick(size, tiny=64, cpu=512, gpu=512)
    recipe_size = "gpu" if kind == "paper" else "cpu"
    config = _config("segmentation", recipe_size, device, side, 1)
    if size == "tiny" and kind == "paper":  # the paper's design at a quarter width, so that the smoke run is quick
        config.model.encoder = "r50_0.25x_sk1"
    classes = 6 if config.data.class_mode == "paper6" else 4
    module = build_module("segmentation", config, classes)
    network = LogitsNetwork(module, dense=True).to(device).eval()
    spec = ModelSpec.from_config(
        "segmentation", [f"class{i}" for i in range(classes)], side, config.data.preprocess, config.data.channels
    )
    return network, spec


def _time(predictor: Any, images: list[np.ndarray], device: torch.device, repeats: int, warm: bool = True) -> float:
    if warm:
        predictor.labels(images)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        predictor.labels(images)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _images(spec: Any, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (spec.image_size, spec.image_size, spec.channels), dtype=np.uint8) for _ in range(count)
    ]


def _measure(model: Any, spec: Any, device: torch.device, batch: int, repeats: int, warm: bool) -> dict[str, float]:
    """Latency at batch 1 (after a warm-up call) and throughput at ``batch`` (warmed up too if ``warm``)."""
    from marsvision.inference.predict import Predictor

    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (spec.image_size, spec.image_size, spec.channels), dtype=np.uint8) for _ in range(batch)
    ]
    latency = _time(Predictor(model, batch_size=1), images[:1], device, repeats)
    many = _time(Predictor(model, batch_size=batch), images, device, max(1, repeats // 2), warm=warm)
    return {"latency_ms": 1e3 * latency, "batch": batch, "throughput_images_per_s": batch / many}


def for_model(kind: str, size: str, device: torch.device) -> dict:
    from marsvision.inference.export import _set_metadata, _to_onnx
    from marsvision.inference.network import CheckpointModel, LogitsNetwork
    from marsvision.inference.onnx_runtime import load_onnx
    from marsvision.inference.predict import Predictor

    network, spec = _network(kind, size, device)
    repeats = pick(size, tiny=2, cpu=3 if kind == "small" else 1, gpu=20)
    # A new batch size needs a warm-up call (oneDNN builds its kernels per shape), except where one image takes
    # seconds (the paper model on a CPU) and the kernel set-up is lost in it.
    warm = not (device.type == "cpu" and kind == "paper" and size != "tiny")
    batch = pick(size, tiny=2, cpu=4 if kind == "small" else 2, gpu=16 if kind == "small" else 8)
    params = sum(p.numel() for p in network.parameters())
    encoder = network.module.config.model.encoder
    out: dict[str, Any] = {"encoder": encoder, "image_size": spec.image_size, "parameters": params}
    out["eager"] = _measure(CheckpointModel(spec, network, device), spec, device, batch, repeats, warm)

    compile_here = size == "gpu" or (size == "cpu" and kind == "small") or COMPILE_TINY
    if compile_here:
        try:
            compiled = CheckpointModel(spec, cast(LogitsNetwork, torch.compile(network)), device)
            # The first call compiles (through the Predictor, so that the graph is the one measured). On the CPU
            # each batch size is one more compile of about a minute, so the throughput is taken at batch 1 there.
            compile_batch = batch if device.type == "cuda" else 1
            start = time.perf_counter()
            Predictor(compiled, batch_size=1).labels(_images(spec, 1))
            sync(device)
            compile_s = time.perf_counter() - start
            out["compile"] = _measure(compiled, spec, device, compile_batch, repeats, True)
            out["compile"]["first_call_s"] = compile_s
        except Exception as error:  # report and go on: the point is to say where compile works
            out["compile"] = {"failed": f"{type(error).__name__}: {str(error)[:300]}"}
    else:
        out["compile"] = {"skipped": f"not at --size {size} for the {kind} model: compiling it takes minutes on a CPU"}

    if device.type == "cpu":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}.onnx"
            start = time.perf_counter()
            example = torch.rand(1, spec.channels, spec.image_size, spec.image_size)
            model = _to_onnx(network.cpu(), example, dynamic_batch=True)
            _set_metadata(model, spec.to_metadata())
            path.write_bytes(model.SerializeToString())
            export_s = time.perf_counter() - start
            onnx_model = load_onnx(path)
            out["onnx"] = _measure(onnx_model, spec, device, batch, repeats, warm)
            out["onnx"]["export_s"] = export_s
            out["onnx"]["providers"] = list(onnx_model.session.get_providers())
    else:
        out["onnx"] = {"skipped": "onnxruntime here is the CPU build; see the CPU figures"}
    return out


def run(size: str) -> dict:
    results: dict[str, Any] = {"cpu": {}}
    cpu_size = "tiny" if size == "tiny" else "cpu"
    for kind in ("small", "paper"):
        results["cpu"][kind] = for_model(kind, cpu_size, torch.device("cpu"))
    if size == "gpu" and torch.cuda.is_available():
        results["cuda"] = {kind: for_model(kind, "gpu", torch.device("cuda")) for kind in ("small", "paper")}
    return results
