"""Hardware utilisation: FLOPs of one training step / its time, as a share of the measured matmul rate.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over forward, loss and backward of one step
(the optimiser update is not counted; convolutions and matmuls dominate), each real operation once: torch's own
formula for a convolution's backward counts the weight gradient of a grouped convolution once per group (the
depthwise convolutions of DeepLabv3+ 256 times), which put the semi-supervised step above the machine's peak,
so ``common.flop_counter`` replaces it. The step time is the median of the hand-written loop
(``overhead.plain_step_fn``, in the recipe's memory layout) on the same model and batch, for the fine-tuning,
semi-supervised and SimCLR steps, in float32 and, where the device computes in bfloat16 natively, under bfloat16
autocast. The machine's rate is a
large ``torch.mm`` in the step's dtype, timed in the same process before and after the steps; the higher of the
two is the reference. A utilisation above 1 is impossible: it fails the benchmark (``failed_checks``).
CPU always; the GPU too when one is present and ``--size gpu`` is asked for.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from benchmarks.common import device_for, flop_counter, matmul_rate, pick, time_calls, to_device
from benchmarks.overhead import _config, build_module, plain_step_fn, synthetic_batch

STEPS = {"finetune": "segmentation", "semiseg": "semiseg", "simclr": "simclr"}
"""Step kind → the ``overhead`` task whose hand-written loop it times."""
DTYPES = {"32": torch.float32, "bf16-mixed": torch.bfloat16}
DOUBLED_BATCH = ("finetune",)
"""Step kinds also measured at twice the recipe's batch (``<kind>_batch<n>``): the paper's fine-tuning batch of 8
is too small for the CPU recipe's network to fill the cores, and this figure shows how much of the gap that is."""


def count_step_flops(step: Any, batch: dict) -> int:
    with flop_counter() as counter:
        step(batch)
    return int(counter.get_total_flops())


def step_batch(kind: str, config: Any, classes: int, device: torch.device) -> dict[str, Any]:
    """The in-memory batch of a step kind: images and labels, or two views."""
    if kind == "simclr":
        side = config.simclr.crop_size or config.data.image_size
        generator = torch.Generator().manual_seed(0)
        shape = (config.data.batch_size, config.data.channels, side, side)
        return to_device({"views": [torch.rand(shape, generator=generator) for _ in range(2)]}, device)
    images = synthetic_batch(config.data.batch_size, config.data.channels, config.data.image_size, classes)
    return to_device(images, device)


def measure(kind: str, size: str, device: torch.device, precision: str, batch_factor: int = 1) -> dict:
    """FLOPs and median time of one hand-written step of ``kind`` in ``precision``, at ``batch_factor`` × the
    recipe's batch."""
    task = STEPS[kind]
    image_size = pick(size, tiny=32, cpu=None, gpu=None)
    config = _config(task, size, device, image_size, pick(size, tiny=2, cpu=None, gpu=None))
    config.data.batch_size *= batch_factor
    config.trainer.precision = precision
    classes = 4 if config.data.class_mode == "terrain4" else 6
    batch = step_batch(kind, config, classes, device)
    module = build_module(task, config, classes).to(device)
    step = plain_step_fn(task, module, config)
    step(batch)  # fills the memory bank, so that the counted step has every term
    flops = count_step_flops(step, batch)
    times = time_calls(lambda: step(batch), device, repeats=pick(size, tiny=3, cpu=5, gpu=20), warmup=2)
    seconds = statistics.median(times)
    return {
        "recipe": config.name,
        "encoder": config.model.encoder,
        "precision": precision,
        "image_size": config.data.image_size,
        "batch_size": config.data.batch_size,
        "gflop_per_step": flops / 1e9,
        "step_ms": 1e3 * seconds,
        "achieved_gflops": flops / seconds / 1e9,
    }


def precisions(device: torch.device) -> list[str]:
    """float32, and bfloat16 autocast where ``device`` computes in bfloat16 natively."""
    from marsvision.training.precision import device_has_native_bf16

    return ["32", "bf16-mixed"] if device_has_native_bf16(device) else ["32"]


def for_device(size: str, device: torch.device) -> dict:
    model_size = size if device.type == "cuda" else ("tiny" if size == "tiny" else "cpu")
    n = pick(model_size, tiny=512, cpu=2048, gpu=8192)
    out: dict[str, Any] = {"device": device.type, "failed_checks": []}
    if device.type == "cuda":
        out["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
    for precision in precisions(device):
        before = matmul_rate(device, n, dtype=DTYPES[precision])
        steps = {kind: measure(kind, model_size, device, precision) for kind in STEPS}
        for kind in DOUBLED_BATCH:
            doubled = measure(kind, model_size, device, precision, batch_factor=2)
            steps[f"{kind}_batch{doubled['batch_size']}"] = doubled
        after = matmul_rate(device, n, dtype=DTYPES[precision])
        reference = max(before, after, key=lambda rate: float(rate["gflops"]))
        out[f"matmul_{precision}"] = {"before_steps": before, "after_steps": after, "reference": reference}
        for kind, result in steps.items():
            result["utilisation"] = result["achieved_gflops"] / float(reference["gflops"])
            out[kind if precision == "32" else f"{kind}_{precision}"] = result
            if result["utilisation"] > 1:
                out["failed_checks"].append(
                    f"{device.type} {kind} {precision}: utilisation {result['utilisation']:.2f} > 1 "
                    "(the FLOP count or the matmul reference is wrong)"
                )
    return out


def run(size: str) -> dict:
    results: dict[str, Any] = {"cpu": for_device(size, torch.device("cpu"))}
    device = device_for(size)
    if device.type == "cuda":
        results["cuda"] = for_device(size, device)
    results["failed_checks"] = [check for part in results.values() for check in part["failed_checks"]]
    return results
