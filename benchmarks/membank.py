"""Memory-bank loss cost: ``elementwise_contrastive_loss`` vs a naive all-pairs pixel contrastive loss.

For feature maps of growing side s (N images, D channels, C classes) both losses run forward + backward:

- ``memory_bank``: marsvision's loss against C prototypes: one (L, C) similarity matrix, L = N·s².
- ``naive``: every labeled location against every other one (a pixel-level supervised contrastive loss):
  an (L, L) similarity matrix, so time and memory grow as L², i.e. s⁴.

Peak memory is what the call allocates beyond its inputs (CUDA allocator statistics; on the CPU, the tensor
storages created during the call, tracked by ``common.TensorMemory``). The naive loss is skipped where its
predicted memory exceeds the size's budget (2.5 GiB on the CPU). A power law a·L^k is fitted to the three
largest points of each curve (k ≈ 1 for the bank, ≈ 2 for the naive one; ``*_fit_ratio`` = measured / fitted
shows where a point leaves the curve) and used to say at what side the naive loss would no longer fit in 24 GB / 80 GB.

Last, the loss's share of one semi-supervised training step: the loss (label downsampling, forward,
backward, pushing the bank) on an embedding of the step's shape, over the hand-written step's median time.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import device_for, mib, peak_bytes, pick, time_calls, to_device
from benchmarks.overhead import _config, build_module, plain_step_fn, synthetic_batch
from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.labels import downsample_labels
from marsvision.losses.elementwise_contrastive import elementwise_contrastive_loss
from marsvision.losses.memory_bank import ClassMemoryBank

SHARE_GOAL = 0.03
NAIVE_BYTES_PER_PAIR = 4 * 6
"""Float32 (L, L) matrices alive at the naive loss's peak (similarities, log-probabilities, masks, grads)."""


def naive_pixel_contrastive_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss over all pairs of labeled locations (the O(L²) baseline).

    For each labeled location i with at least one positive: −mean over positives p of
    log( exp(K(f_i, f_p)/τ) / Σ_{a ≠ i} exp(K(f_i, f_a)/τ) ).
    """
    d = features.shape[1]
    flat_labels = labels.reshape(-1)
    keep = flat_labels != IGNORE_INDEX
    f = F.normalize(features.permute(0, 2, 3, 1).reshape(-1, d), dim=1)[keep]  # (L', D)
    y = flat_labels[keep]
    logits = f @ f.t() / temperature  # (L', L')
    self_mask = torch.eye(len(y), dtype=torch.bool, device=f.device)
    logits = logits.masked_fill(self_mask, torch.finfo(logits.dtype).min)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (y.unsqueeze(0) == y.unsqueeze(1)) & ~self_mask
    counts = positive.sum(1)
    per_anchor = -(log_prob * positive).sum(1) / counts.clamp(min=1)
    has_positive = counts > 0
    return per_anchor[has_positive].mean()


def _inputs(n: int, d: int, side: int, classes: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(side)
    features = torch.randn(n, d, side, side, generator=generator).to(device).requires_grad_(True)
    labels = torch.randint(0, classes, (n, side, side), generator=generator)
    labels[torch.rand(n, side, side, generator=generator) < 0.2] = IGNORE_INDEX
    prototypes = torch.randn(classes, d, generator=generator).to(device)
    valid = torch.ones(classes, dtype=torch.bool, device=device)
    return features, labels.to(device), prototypes, valid


def fit_power(xs: list[float], ys: list[float]) -> dict[str, float] | None:
    """Least-squares fit of log y = log a + k log x; None with fewer than two points."""
    if len(xs) < 2:
        return None
    lx = [math.log(x) for x in xs]
    ly = [math.log(max(y, 1e-12)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    k = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)
    return {"a": math.exp(my - k * mx), "k": k}


def curve(size: str, device: torch.device) -> dict:
    sides = pick(size, tiny=[8, 16, 24], cpu=[32, 48, 64, 96, 128], gpu=[32, 48, 64, 96, 128, 192, 256])
    n = pick(size, tiny=1, cpu=1, gpu=4)
    d, classes, temperature = 128, 4, 0.07
    budget = pick(size, tiny=2**28, cpu=5 * 2**29, gpu=40 * 2**30)
    repeats = pick(size, tiny=2, cpu=3, gpu=10)
    rows = []
    for side in sides:
        features, labels, prototypes, valid = _inputs(n, d, side, classes, device)
        locations = n * side * side

        def bank(
            f: torch.Tensor = features, y: torch.Tensor = labels, m: torch.Tensor = prototypes, v: torch.Tensor = valid
        ) -> None:
            elementwise_contrastive_loss(f, y, m, v, temperature).backward()

        def naive(f: torch.Tensor = features, y: torch.Tensor = labels) -> None:
            naive_pixel_contrastive_loss(f, y, temperature).backward()

        row: dict[str, Any] = {"side": side, "locations": locations}
        row["memory_bank_ms"] = 1e3 * statistics.median(time_calls(bank, device, repeats))
        row["memory_bank_peak_mib"] = mib(peak_bytes(bank, device))
        predicted = NAIVE_BYTES_PER_PAIR * locations**2
        if predicted <= budget:
            row["naive_ms"] = 1e3 * statistics.median(time_calls(naive, device, repeats))
            row["naive_peak_mib"] = mib(peak_bytes(naive, device))
        else:
            row["naive_skipped"] = f"predicted {predicted / 2**30:.1f} GiB > budget {budget / 2**30:.1f} GiB"
        rows.append(row)
    fits: dict[str, Any] = {}
    for key in ("memory_bank_ms", "memory_bank_peak_mib", "naive_ms", "naive_peak_mib"):
        points = [(r["locations"], r[key]) for r in rows if key in r][-3:]  # the largest: fixed costs fade
        fits[key] = fit_power([p[0] for p in points], [p[1] for p in points])
    limits = {}
    memory_fit = fits.get("naive_peak_mib")
    if memory_fit and memory_fit["k"] > 0:
        for name, gib in (("24GB_RAM", 24), ("80GB_GPU", 80)):
            locations = (gib * 1024 / memory_fit["a"]) ** (1 / memory_fit["k"])
            limits[name] = {"locations": int(locations), "side_at_batch": int(math.sqrt(locations / n)), "batch": n}
    for row in rows:  # how far each measured point lies from its fitted curve
        for key in ("naive_ms", "naive_peak_mib"):
            fit = fits.get(key)
            if fit and key in row:
                row[key.replace("naive", "naive_fit_ratio")] = row[key] / (fit["a"] * row["locations"] ** fit["k"])
    return {
        "batch": n,
        "dim": d,
        "classes": classes,
        "rows": rows,
        "power_fits": fits,
        "naive_limit_from_fit": limits,
    }


def share_of_step(size: str, device: torch.device) -> dict:
    image_size = pick(size, tiny=32, cpu=None, gpu=None)
    batch_size = pick(size, tiny=2, cpu=None, gpu=None)
    config = _config("semiseg", size, device, image_size, batch_size)
    batch = to_device(synthetic_batch(config.data.batch_size, config.data.channels, config.data.image_size, 4), device)
    module = build_module("semiseg", config, 4).to(device)
    step = plain_step_fn("semiseg", module, config)
    repeats = pick(size, tiny=3, cpu=5, gpu=20)
    step_s = statistics.median(time_calls(lambda: step(batch), device, repeats, warmup=2))
    with torch.no_grad():
        embedding_shape = module.model(batch["image"])["embedding"].shape
    embedding = torch.randn(embedding_shape, device=device, requires_grad=True)
    bank = ClassMemoryBank(4, config.semiseg.embedding_dim, config.semiseg.queue_len).to(device)
    labels = batch["label"]

    def loss_only() -> None:
        small = downsample_labels(labels, (embedding.shape[-2], embedding.shape[-1]))
        loss = elementwise_contrastive_loss(
            embedding, small, bank.prototypes(), bank.valid(), temperature=config.semiseg.temperature
        )
        bank.push(embedding.detach(), small)
        (config.semiseg.contrastive_weight * loss).backward()

    loss_s = statistics.median(time_calls(loss_only, device, repeats * 4, warmup=2))
    share = loss_s / step_s
    return {
        "recipe": config.name,
        "image_size": config.data.image_size,
        "batch_size": config.data.batch_size,
        "embedding_shape": list(embedding_shape),
        "step_ms": 1e3 * step_s,
        "loss_ms": 1e3 * loss_s,
        "share": share,
        "goal": f"share < {SHARE_GOAL}",
        "goal_met": share < SHARE_GOAL,
    }


def run(size: str) -> dict:
    device = device_for(size)
    return {"device": device.type, "curve": curve(size, device), "share_of_step": share_of_step(size, device)}
