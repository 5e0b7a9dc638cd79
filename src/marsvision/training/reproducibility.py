"""Randomness that depends only on (seed, epoch, draw) and (seed, step), so a resumed run replays exactly.

Global RNG state at the start of an epoch depends on when Lightning happens to create data iterators, which
differs between an uninterrupted and a resumed run. So nothing here relies on it: samplers order items by
(seed, epoch), each draw of a training item is augmented under its own seed (also inside DataLoader workers),
and the global RNGs are reseeded from (seed, step) before every training step (dropout, MixUp, ...).

A draw is keyed by its position in the epoch's draw order, not by the item: an image that a sampler draws
twice in one epoch (the class-balanced sampler repeats a class's only image; sampling with replacement repeats
images) gets two independent augmentations, as two views of it must.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

SEED_MODULUS = 2**31 - 1


def mixed_seed(*parts: int) -> int:
    """A seed that is a pure function of its integer parts."""
    return int(np.random.SeedSequence([p % SEED_MODULUS for p in parts]).generate_state(1)[0]) % SEED_MODULUS


def seed_torch(seed: int, device: torch.device | None = None) -> None:
    """Seed torch's CPU generator and, when ``device`` is a CUDA device, that device's generator.

    Not ``torch.manual_seed``: it also queues a lazy seeding call, with a formatted stack trace, for every
    accelerator backend torch knows (CUDA, XPU, MTIA), about 0.1 ms on a CPU machine, paid here per training
    step and per item (benchmarks/README.md, "Framework overhead").
    """
    torch.default_generator.manual_seed(seed)
    if device is not None and device.type == "cuda":
        torch.cuda.manual_seed(seed)


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, step, rank), for a step's own draws.

    Masks, boxes and photometric parameters drawn from it replay in a resumed run; every rank draws differently.
    """
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + rank)


DrawKey = tuple[int, int, int]
"""``(epoch, draw, index)``: item ``index`` drawn at position ``draw`` of the epoch's draw order."""


class EpochSeededSampler(Sampler[DrawKey]):
    """Yield ``(epoch, draw, index)`` keys in an order that is a pure function of (seed, epoch).

    Without replacement it is a permutation of ``range(size)``; with ``num_samples`` it draws that many
    indices with replacement (secondary streams that ride along a labeled one). Lightning calls
    ``set_epoch`` before every epoch, resumed or not.
    """

    def __init__(self, size: int, seed: int, num_samples: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"cannot sample from an empty dataset (size {size})")
        self.size = size
        self.seed = seed
        self.num_samples = num_samples
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples if self.num_samples is not None else self.size

    def __iter__(self) -> Iterator[DrawKey]:
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, self.epoch))
        if self.num_samples is None:
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.randint(self.size, (self.num_samples,), generator=generator)
        for draw, index in enumerate(order.tolist()):
            yield self.epoch, draw, index


class EpochKeyedBatches(Sampler[list[DrawKey]]):
    """Wrap a batch sampler of plain indices (e.g. the class-balanced one) so it yields draw keys.

    Keys are ``(epoch, draw, index)``, ``draw`` counting the items of the epoch's batches in order.
    """

    def __init__(self, batch_sampler: Any) -> None:
        self.batch_sampler = batch_sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[list[DrawKey]]:
        draw = 0
        for batch in self.batch_sampler:
            yield [(self.epoch, draw + position, index) for position, index in enumerate(batch)]
            draw += len(batch)


class ItemSeeded(Dataset[Any]):
    """Fetch ``dataset[index]`` for a key ``(epoch, draw, index)`` under the seed (seed, epoch, draw).

    The global torch RNG is forked, so augmentation draws are reproducible and leave no trace outside.
    """

    def __init__(self, dataset: Dataset[Any], seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: DrawKey) -> Any:
        epoch, draw, index = key
        with torch.random.fork_rng(devices=[]):
            seed_torch(mixed_seed(self.seed, epoch, draw))  # augmentations draw on the CPU generator only
            return self.dataset[index]


class StepReseed(L.Callback):
    """Reseed torch, numpy and random from (seed, global step) before every training step."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step_seed = mixed_seed(self.seed, trainer.global_step, trainer.global_rank)
        seed_torch(step_seed, pl_module.device)
        np.random.seed(step_seed)
        random.seed(step_seed)
