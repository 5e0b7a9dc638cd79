"""Data pipeline: images/s of decode + preprocessing + augmentation per worker, vs the model's consumption.

Synthetic NAVCAM-like JPEG/PNG pairs (``synthesize_paired_folder``) at 1024² (NAVCAM size, resized to the
paper's 512 for training) and at 256² (the CPU recipes' source size, resized to 128). Each item is what the
training loader gets: ``PairedFolder`` with ``segmentation_train_transform`` (random rescale, crop, flip).

A DataLoader worker runs one item at a time with one torch thread, so items are read in this process with
``torch.set_num_threads(1)``, which gives the rate of one worker. Three passes over the folder:
``no_cache`` (decode every time), ``cache_cold`` (decode and write the ``.npy`` cache) and ``cache_warm``
(read the cache). ``decode_only`` times the JPEG decode alone. The model's consumption rate is
batch / median step time of the hand-written step of the fine-tuning model at the training size;
``workers_needed`` = consumption / warm (or uncached) per-worker rate.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import device_for, pick, time_calls, to_device
from benchmarks.overhead import _config, build_module, plain_step_fn, synthetic_batch
from marsvision.data.folders import PairedFolder
from marsvision.data.imageio import read_image
from marsvision.data.synth import synthesize_paired_folder
from marsvision.data.transforms import segmentation_train_transform


def _pass(dataset: PairedFolder) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return len(dataset) / (time.perf_counter() - start)


def pipeline_rates(root: Path, train_size: int, cache_root: Path) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        transform = segmentation_train_transform(train_size)
        plain = PairedFolder(root, image_size=train_size, channels=1, transform=transform)
        plain[0]  # import and first-call costs
        files = [sample.image for sample in plain.samples]
        start = time.perf_counter()
        for file in files:
            read_image(file, 1)
        decode = len(files) / (time.perf_counter() - start)
        no_cache = _pass(plain)
        cached = PairedFolder(root, image_size=train_size, channels=1, transform=transform, cache_dir=cache_root)
        cold = _pass(cached)
        warm = _pass(cached)
    finally:
        torch.set_num_threads(threads)
    return {
        "images": len(files),
        "decode_only_images_per_s": decode,
        "no_cache_images_per_s": no_cache,
        "cache_cold_images_per_s": cold,
        "cache_warm_images_per_s": warm,
    }


def consumption(size: str, device: torch.device, train_size: int, batch_size: int) -> dict:
    config = _config("segmentation", size, device, train_size, batch_size)
    batch = to_device(synthetic_batch(batch_size, config.data.channels, train_size, 4), device)
    module = build_module("segmentation", config, 4).to(device)
    step = plain_step_fn("segmentation", module, config)
    seconds = statistics.median(time_calls(lambda: step(batch), device, pick(size, tiny=2, cpu=3, gpu=20), warmup=1))
    return {
        "encoder": config.model.encoder,
        "device": device.type,
        "batch_size": batch_size,
        "step_ms": 1e3 * seconds,
        "images_per_s": batch_size / seconds,
    }


def run(size: str) -> dict:
    device = device_for(size)
    cases = pick(
        size,
        tiny=[(1024, 64, 2, 2), (256, 32, 4, 2)],
        cpu=[(1024, 512, 12, 2), (256, 128, 48, 8)],
        gpu=[(1024, 512, 48, 8), (256, 128, 96, 32)],
    )  # (source side, training side, images, batch for the consumption rate)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, train_size, count, batch_size in cases:
            root = Path(tmp) / f"synth{source}"
            synthesize_paired_folder(root, num_images=count, size=source, seed=0)
            rates = pipeline_rates(root, train_size, Path(tmp) / f"cache{source}")
            model = consumption(size, device, train_size, batch_size)
            best = max(rates["cache_warm_images_per_s"], rates["no_cache_images_per_s"])
            results.append(
                {
                    "source_side": source,
                    "train_side": train_size,
                    "per_worker": rates,
                    "model": model,
                    "workers_needed_with_cache": model["images_per_s"] / rates["cache_warm_images_per_s"],
                    "workers_needed_without_cache": model["images_per_s"] / rates["no_cache_images_per_s"],
                    "one_worker_keeps_up": best >= model["images_per_s"],
                }
            )
    return {"device": device.type, "torch_threads_per_worker": 1, "cases": results}
