"""Scaling: step memory and time vs batch size and image size for the paper configuration.

The paper configuration is ``finetune-ai4mars``: r50_2x_sk1 + the paper's atrous head, one channel, Adam.

- ``meta``: the whole training step (forward, cross-entropy, backward) of the paper model on the meta device,
  so nothing is allocated or computed: peak tensor memory (``common.TensorMemory(count_meta=True)``, which
  includes the parameter gradients) + weights + Adam's two moments, and FLOPs (``common.flop_counter``), for
  each (batch, side). ``fits`` gives the largest batch per side within 24 GB of RAM and an 80 GB GPU (from a
  linear fit of memory vs batch; the measured points are exact for this graph, not an estimate).
- ``measured``: real steps of the same design at a reduced width (r50_0.25x_sk1) on this machine's CPU,
  which give an achieved GFLOP/s; ``predicted_step_s`` divides the paper model's FLOPs by it (the real rate
  of the wider model is usually a little higher: bigger matmuls).
- ``rss_check``: one real step (forward, backward, Adam) of the paper recipe itself (512², batch 8) on this
  CPU, in a fresh process: the rise of its peak resident memory plus the weights, next to the meta estimate of
  the same point. An independent check of the estimate: the OS counts the pages, not our dispatch mode.
- ``cuda`` (``--size gpu`` with a GPU): the paper model itself, timed, with the allocator's peak memory.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import TensorMemory, device_for, flop_counter, mib, peak_bytes, pick, time_calls
from benchmarks.overhead import _config, build_module, synthetic_batch
from marsvision.data.classes import IGNORE_INDEX

RAM_BYTES = 24e9
GPU_BYTES = 80e9


def _paper_config(device: torch.device, encoder: str | None = None) -> Any:
    config = _config("segmentation", "gpu", device, None, None)
    if encoder is not None:
        config.model.encoder = encoder
    return config


def _step(model: Any, images: torch.Tensor, labels: torch.Tensor) -> None:
    logits = model(images)["logits"]
    F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX).backward()


def meta_point(model: Any, batch: int, side: int, channels: int) -> dict[str, float]:
    images = torch.empty(batch, channels, side, side, device="meta")
    labels = torch.empty(batch, side, side, dtype=torch.long, device="meta")
    tracker = TensorMemory(count_meta=True)
    with tracker:
        _step(model, images, labels)
    model.zero_grad(set_to_none=True)
    with flop_counter() as counter:
        _step(model, images, labels)
    model.zero_grad(set_to_none=True)
    return {"step_peak_bytes": tracker.peak, "flops": counter.get_total_flops()}


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def meta_grid(size: str) -> dict:
    config = _paper_config(torch.device("cpu"))
    with torch.device("meta"):
        module = build_module("segmentation", config, 6)
    model = module.model.train()
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    static = 4 * params * 3 + buffers  # weights + Adam exp_avg + exp_avg_sq (gradients are in the step's peak)
    batches = pick(size, tiny=[2, 4], cpu=[2, 4, 8, 16], gpu=[2, 4, 8, 16, 32])  # SK attention's BN needs N ≥ 2
    sides = pick(size, tiny=[128, 256], cpu=[256, 512, 1024], gpu=[256, 512, 768, 1024])
    rows = []
    for side in sides:
        for batch in batches:
            point = meta_point(model, batch, side, config.data.channels)
            rows.append(
                {
                    "batch": batch,
                    "side": side,
                    "gflop_per_step": point["flops"] / 1e9,
                    "total_gib": (static + point["step_peak_bytes"]) / 2**30,
                    "step_peak_gib": point["step_peak_bytes"] / 2**30,
                }
            )
    fits = {}
    for side in sides:
        points = [r for r in rows if r["side"] == side]
        intercept, slope = linear_fit([r["batch"] for r in points], [r["total_gib"] * 2**30 for r in points])
        fits[str(side)] = {
            "gib_per_image": slope / 2**30,
            "max_batch_24GB_RAM": max(int((RAM_BYTES - intercept) // slope), 0),
            "max_batch_80GB_GPU": max(int((GPU_BYTES - intercept) // slope), 0),
        }
    return {
        "recipe": config.name,
        "encoder": config.model.encoder,
        "parameters": params,
        "static_gib": static / 2**30,
        "rows": rows,
        "fits": fits,
    }


def measured_reduced(size: str, meta: dict) -> dict:
    device = torch.device("cpu")
    encoder = "r50_0.25x_sk1"
    config = _paper_config(device, encoder)
    module = build_module("segmentation", config, 6)
    model = module.model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    rows = []
    for batch, side in pick(size, tiny=[(2, 64), (4, 64)], cpu=[(2, 128), (4, 128), (2, 256)]):
        data = synthetic_batch(batch, config.data.channels, side, 6)

        def step(data: dict = data) -> None:
            optimizer.zero_grad(set_to_none=True)
            _step(model, data["image"], data["label"])
            optimizer.step()

        with flop_counter() as counter:
            _step(model, data["image"], data["label"])
        seconds = statistics.median(time_calls(step, device, repeats=pick(size, tiny=2, cpu=3), warmup=1))
        rows.append(
            {
                "batch": batch,
                "side": side,
                "step_ms": 1e3 * seconds,
                "achieved_gflops": counter.get_total_flops() / seconds / 1e9,
                "peak_mib": mib(peak_bytes(step, device)),
            }
        )
    rate = rows[-1]["achieved_gflops"] * 1e9
    predicted = [
        {"batch": r["batch"], "side": r["side"], "predicted_step_s": r["gflop_per_step"] * 1e9 / rate}
        for r in meta["rows"]
    ]
    return {"encoder": encoder, "device": "cpu", "rows": rows, "paper_model_on_this_cpu": predicted}


def _rss_step(batch: int, side: int, threads: int, results: Any) -> None:
    """Child process: the rise of peak RSS over one real CPU step of the paper model (bytes, Linux KiB units)."""
    torch.set_num_threads(threads)
    config = _paper_config(torch.device("cpu"))
    model = build_module("segmentation", config, 6).model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    data = synthetic_batch(batch, config.data.channels, side, 6)
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _step(model, data["image"], data["label"])
    optimizer.step()
    rise = 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    results.put({"rss_rise_bytes": rise, "weights": weights})


def rss_check(meta: dict, batch: int = 8, side: int = 512) -> dict:
    context = multiprocessing.get_context("spawn")  # a fresh process: its peak RSS starts from nothing
    results = context.Queue()
    child = context.Process(target=_rss_step, args=(batch, side, torch.get_num_threads(), results))
    child.start()
    child.join()  # the result is a small dict: the queue cannot fill and block the child's exit
    if child.exitcode != 0:
        raise RuntimeError(f"the paper step ({side}², batch {batch}) process exited with {child.exitcode}")
    measured = results.get(timeout=60)
    measured_gib = (measured["rss_rise_bytes"] + measured["weights"]) / 2**30
    estimate = next(r for r in meta["rows"] if r["batch"] == batch and r["side"] == side)["total_gib"]
    return {
        "batch": batch,
        "side": side,
        "measured_gib": measured_gib,
        "meta_estimate_gib": estimate,
        "measured_over_estimate": measured_gib / estimate,
    }


def measured_cuda(size: str) -> dict:
    device = torch.device("cuda")
    config = _paper_config(device)
    module = build_module("segmentation", config, 6)
    model = module.model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    rows: list[dict[str, Any]] = []
    for side in (512, 1024):
        for batch in (2, 4, 8, 16, 32, 64):
            data = synthetic_batch(batch, config.data.channels, side, 6)
            images, labels = data["image"].to(device), data["label"].to(device)

            def step(images: torch.Tensor = images, labels: torch.Tensor = labels) -> None:
                optimizer.zero_grad(set_to_none=True)
                _step(model, images, labels)
                optimizer.step()

            try:
                seconds = statistics.median(time_calls(step, device, repeats=5, warmup=2))
                torch.cuda.reset_peak_memory_stats()
                step()
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated()  # everything: weights, Adam state, activations
            except torch.OutOfMemoryError:
                rows.append({"batch": batch, "side": side, "out_of_memory": True})
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                break
            rows.append({"batch": batch, "side": side, "step_ms": 1e3 * seconds, "peak_gib": peak / 2**30})
    return {"encoder": config.model.encoder, "gpu": torch.cuda.get_device_name(), "rows": rows}


def run(size: str) -> dict:
    meta = meta_grid(size)
    out: dict[str, Any] = {"meta": meta, "measured": measured_reduced("tiny" if size == "tiny" else "cpu", meta)}
    if size == "cpu":
        out["rss_check"] = rss_check(meta)
    if device_for(size).type == "cuda":
        out["cuda"] = measured_cuda(size)
    return out
