"""Framework overhead: marsvision's training step as Lightning runs it vs a hand-written PyTorch loop.

Three ways to run the same step on the same model (same initial weights), the same in-memory batch and
the same thread count:

- ``marsvision``: the Trainer marsvision trains with (``training.trainer.build_trainer``: TensorBoard logger,
  JSON-lines metrics, per-step reseeding, checkpoint callbacks; progress bar off), the module's own
  ``training_step`` and ``configure_optimizers`` (parameter groups, step-wise LR schedule).
- ``lightning``: the same module under a bare Lightning trainer (no logger, callbacks, checkpoints).
- ``plain``: ``zero_grad → forward → loss → backward → step`` on the module's network with a plain
  optimiser of the same kind and learning rate, as a user would write it (torch's default implementation), in
  the recipe's memory layout (NHWC where ``trainer.channels_last`` is set, as marsvision trains it).
- ``plain_fused``: the same loop with the optimiser's fused kernel, which marsvision uses where torch has one:
  ``marsvision / plain_fused`` is the cost of the loop machinery alone.

A step is timed from one ``on_train_batch_start`` to the next (the loop: fetch, transfer, hooks, step;
``plain`` is timed around one loop iteration, fetch included). Each repeat builds a fresh trainer, runs
``warmup`` untimed steps and ``steps`` timed ones; repeats alternate between the three, so that load from
other processes falls on all of them alike. Reported: the median over all timed steps, and
``ratio = marsvision / plain`` (goal ≤ 1.03, issue #16) and ``ratio_marsvision_vs_plain_fused``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import (
    autocast,
    batch_loader,
    device_for,
    lightning_step_times,
    pick,
    stats,
    sync,
    to_device,
)
from marsvision.data.classes import IGNORE_INDEX
from marsvision.training.lightning_base import images_channels_last

GOAL = 1.03


def synthetic_batch(
    batch_size: int, channels: int, size: int, num_classes: int, seed: int = 0, ignore_share: float = 0.2
) -> dict[str, torch.Tensor]:
    """Images in [0, 1] and blocky label maps (8×8 px regions, ``ignore_share`` of them unlabeled)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, channels, size, size, generator=generator)
    coarse = torch.randint(0, num_classes, (batch_size, 1, max(size // 8, 1), max(size // 8, 1)), generator=generator)
    hidden = torch.rand(coarse.shape, generator=generator) < ignore_share
    coarse = torch.where(hidden, torch.full_like(coarse, IGNORE_INDEX), coarse)
    labels = F.interpolate(coarse.float(), size=(size, size), mode="nearest").long()[:, 0]
    return {"image": images, "label": labels}


def _config(task: str, size: str, device: torch.device, image_size: int | None, batch_size: int | None) -> Any:
    from marsvision.training.config import load_config

    recipes = {
        "segmentation": pick(size, tiny="demo-label-fractions", cpu="finetune-ai4mars256-cpu", gpu="finetune-ai4mars"),
        "semiseg": pick(size, tiny="demo-semiseg", cpu="wang-seg-ai4mars256-cpu", gpu="wang-seg-ai4mars"),
        "simclr": pick(size, tiny="demo-simclr", cpu="simclr-ai4mars256-cpu", gpu="simclr-ai4mars"),
    }
    overrides = [
        "trainer.progress_bar=false",
        f"trainer.device={'cuda' if device.type == 'cuda' else 'cpu'}",
        "trainer.max_epochs=1",
        "model.weights=null",
    ]
    if image_size is not None:
        overrides.append(f"data.image_size={image_size}")
    if batch_size is not None:
        overrides.append(f"data.batch_size={batch_size}")
    if task == "semiseg":
        overrides.append("semiseg.stage_epochs=[0,1,0]")  # epoch 0 is the joint stage: L_ce + λ L_s
    config = load_config(recipes[task], overrides)
    if device.type == "cpu" or config.trainer.precision not in ("32", "bf16-mixed"):
        config.trainer.precision = "32"  # the plain loop mirrors 32 and bf16-mixed (autocast) only
    return config


def build_module(task: str, config: Any, num_classes: int, seed: int = 0) -> Any:
    """The marsvision Lightning module of the config's method with seeded initial weights."""
    from marsvision.training.data import ClassInfo
    from marsvision.training.registry import method_class

    torch.manual_seed(seed)
    return method_class(config.method)(config, ClassInfo([f"class{i}" for i in range(num_classes)]))


def plain_optimizer(config: Any, params: Any, fused: bool) -> torch.optim.Optimizer:
    if config.optim.name == "sgd":
        return torch.optim.SGD(params, lr=config.optim.lr, momentum=config.optim.momentum, fused=fused or None)
    return torch.optim.Adam(params, lr=config.optim.lr, fused=fused or None)


def plain_loss(task: str, module: Any, config: Any) -> tuple[list[torch.nn.Parameter], Any]:
    """The parameters a hand-written step trains and its loss, ``loss(batch)``, written out: the cross-entropy
    (segmentation), plus the memory-bank contrastive loss (semiseg), or NT-Xent on two views (simclr)."""
    from marsvision.data.labels import downsample_labels
    from marsvision.losses.elementwise_contrastive import elementwise_contrastive_loss
    from marsvision.losses.memory_bank import ClassMemoryBank
    from marsvision.losses.nt_xent import nt_xent_loss

    if task == "simclr":
        encoder, head = module.encoder, module.projection_head

        def contrastive(batch: dict[str, Any]) -> torch.Tensor:
            view1, view2 = batch["views"]
            loss: torch.Tensor = nt_xent_loss(head(encoder(view1)), head(encoder(view2)), config.simclr.temperature)
            return loss

        return [*encoder.parameters(), *head.parameters()], contrastive
    model = module.model
    bank = None
    if task == "semiseg":
        bank = ClassMemoryBank(module.num_classes, config.semiseg.embedding_dim, config.semiseg.queue_len)
        bank.to(next(model.parameters()).device)

    def segmentation(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model(batch["image"])
        loss = F.cross_entropy(out["logits"], batch["label"], ignore_index=IGNORE_INDEX)
        if bank is not None:
            embedding = out["embedding"]
            small = downsample_labels(batch["label"], (embedding.shape[-2], embedding.shape[-1]))
            contrastive = elementwise_contrastive_loss(
                embedding, small, bank.prototypes(), bank.valid(), temperature=config.semiseg.temperature
            )
            bank.push(embedding.detach(), small)
            loss = loss + config.semiseg.contrastive_weight * contrastive
        return loss

    return list(model.parameters()), segmentation


def plain_step_fn(task: str, module: Any, config: Any, fused: bool = False) -> Any:
    """The hand-written step: the network, the loss written out, a plain optimiser. Returns step(batch).

    It trains in the recipe's memory layout (``trainer.channels_last``) as marsvision does, so that the
    comparisons built on it (overhead, utilisation) set the same switches on both sides.
    """
    module.train()
    channels_last = config.trainer.channels_last
    if channels_last:
        module.to(memory_format=torch.channels_last)
    parameters, loss_of = plain_loss(task, module, config)
    optimizer = plain_optimizer(config, parameters, fused)
    device = parameters[0].device

    def step(batch: dict[str, Any]) -> torch.Tensor:
        if channels_last:
            batch = images_channels_last(batch)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, config.trainer.precision):
            loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        return loss

    return step


def run_plain(
    task: str, config: Any, batch: dict, device: torch.device, warmup: int, steps: int, classes: int, fused: bool
) -> list:
    module = build_module(task, config, classes).to(device)
    step = plain_step_fn(task, module, config, fused)
    times: list[float] = []
    last = None
    for index, cpu_batch in enumerate(batch_loader(batch, warmup + steps + 1)):
        sync(device)
        now = time.perf_counter()
        if last is not None and index > warmup:
            times.append(now - last)
        last = now
        step(to_device(cpu_batch, device))
    return times


def run_lightning(
    task: str, config: Any, batch: dict, device: torch.device, warmup: int, steps: int, classes: int, marsvision: bool
) -> tuple[list[float], list[float]]:
    module = build_module(task, config, classes)
    timer = lightning_step_times(module, config, {"labeled": batch}, device, warmup, steps, marsvision)
    return timer.loop, timer.inner


def measure(
    task: str, size: str, device: torch.device, image_size: int | None = None, batch_size: int | None = None
) -> dict:
    config = _config(task, size, device, image_size, batch_size)
    classes = 4 if config.data.class_mode == "terrain4" else 6
    batch = synthetic_batch(config.data.batch_size, config.data.channels, config.data.image_size, classes)
    warmup = pick(size, tiny=2, cpu=2, gpu=10)
    steps = pick(size, tiny=3, cpu=12, gpu=50)
    repeats = pick(size, tiny=2, cpu=4, gpu=3)
    loops: dict[str, list[float]] = {"marsvision": [], "lightning": [], "plain": [], "plain_fused": []}
    inner: dict[str, list[float]] = {"marsvision": [], "lightning": []}
    per_repeat: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(repeats):
        for name in loops:
            if name.startswith("plain"):
                times = run_plain(task, config, batch, device, warmup, steps, classes, fused=name == "plain_fused")
            else:
                times, inside = run_lightning(
                    task, config, batch, device, warmup, steps, classes, marsvision=name == "marsvision"
                )
                inner[name] += inside
            loops[name] += times
            per_repeat[name].append(1e3 * statistics.median(times))
    medians = {name: statistics.median(times) for name, times in loops.items()}
    return {
        "recipe": config.name,
        "encoder": config.model.encoder,
        "head": config.model.head,
        "image_size": config.data.image_size,
        "batch_size": config.data.batch_size,
        "optimizer": config.optim.name,
        "precision": config.trainer.precision,
        "warmup_steps": warmup,
        "timed_steps_per_repeat": steps,
        "repeats": repeats,
        "step_ms": {name: stats(times) for name, times in loops.items()},
        "inside_step_ms": {name: stats(times) for name, times in inner.items()},
        "per_repeat_median_ms": per_repeat,
        "ratio_marsvision_vs_plain": medians["marsvision"] / medians["plain"],
        "ratio_lightning_vs_plain": medians["lightning"] / medians["plain"],
        "ratio_marsvision_vs_plain_fused": medians["marsvision"] / medians["plain_fused"],
        "overhead_ms_per_step": 1e3 * (medians["marsvision"] - medians["plain"]),
        "goal": f"ratio <= {GOAL}",
        "goal_met": medians["marsvision"] / medians["plain"] <= GOAL,
    }


def run(size: str) -> dict:
    device = device_for(size)
    image_size = pick(size, tiny=32, cpu=None, gpu=None)  # None: the recipe's own size
    batch_size = pick(size, tiny=2, cpu=None, gpu=None)
    return {
        "device": device.type,
        "finetune": measure("segmentation", size, device, image_size, batch_size),
        "semiseg": measure("semiseg", size, device, image_size, batch_size),
    }
