"""Hardware utilisation: FLOPs of one training step / its time, as a share of the measured matmul rate.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over forward, loss and backward of one
step (the optimiser update is not counted; convolutions and matmuls dominate). The step time is the median
of the hand-written loop (``overhead.plain_step_fn``) on the same model and batch. The machine's rate is a
large ``torch.mm`` timed in the same run (2n³ FLOPs), in float32, or bfloat16 for a bf16-mixed recipe.
CPU always; the GPU too when one is present and ``--size gpu`` is asked for.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import device_for, matmul_rate, pick, time_calls, to_device
from benchmarks.overhead import _config, build_module, plain_step_fn, synthetic_batch


def count_step_flops(step: Any, batch: dict) -> int:
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return int(counter.get_total_flops())


def measure(task: str, size: str, device: torch.device, image_size: int | None, batch_size: int | None) -> dict:
    config = _config(task, size, device, image_size, batch_size)
    classes = 4 if config.data.class_mode == "terrain4" else 6
    batch = to_device(
        synthetic_batch(config.data.batch_size, config.data.channels, config.data.image_size, classes), device
    )
    module = build_module(task, config, classes).to(device)
    step = plain_step_fn(task, module, config)
    step(batch)  # fills the memory bank, so that the counted step has every term
    flops = count_step_flops(step, batch)
    times = time_calls(lambda: step(batch), device, repeats=pick(size, tiny=3, cpu=5, gpu=20), warmup=2)
    seconds = statistics.median(times)
    return {
        "recipe": config.name,
        "encoder": config.model.encoder,
        "precision": config.trainer.precision,
        "image_size": config.data.image_size,
        "batch_size": config.data.batch_size,
        "gflop_per_step": flops / 1e9,
        "step_ms": 1e3 * seconds,
        "achieved_gflops": flops / seconds / 1e9,
    }


def for_device(size: str, device: torch.device) -> dict:
    model_size = size if device.type == "cuda" else ("tiny" if size == "tiny" else "cpu")
    image_size = pick(model_size, tiny=32, cpu=None, gpu=None)
    batch_size = pick(model_size, tiny=2, cpu=None, gpu=None)
    n = pick(model_size, tiny=512, cpu=2048, gpu=8192)
    rates = {"32": matmul_rate(device, n)}
    out: dict[str, Any] = {"device": device.type, "matmul": rates["32"]}
    if device.type == "cuda":
        out["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
        rates["bf16-mixed"] = out["matmul_bf16"] = matmul_rate(device, n, dtype=torch.bfloat16)
    for name, task in (("finetune", "segmentation"), ("semiseg", "semiseg")):
        result = measure(task, model_size, device, image_size, batch_size)
        result["utilisation"] = result["achieved_gflops"] / float(rates[result["precision"]]["gflops"])
        out[name] = result
    return out


def run(size: str) -> dict:
    results = {"cpu": for_device(size, torch.device("cpu"))}
    device = device_for(size)
    if device.type == "cuda":
        results["cuda"] = for_device(size, device)
    return results
