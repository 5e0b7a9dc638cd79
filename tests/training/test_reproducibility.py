"""Augmentation randomness is keyed by draw: an image drawn twice in an epoch gets two independent draws, and
the same (seed, epoch) replays them exactly."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from marsvision.data.samplers import ClassBalancedBatchSampler
from marsvision.training.reproducibility import EpochKeyedBatches, EpochSeededSampler, ItemSeeded


class RandomDraws(Dataset[dict]):
    """Item ``i`` is a fresh random number from torch's generator, as an augmentation would draw."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        return {"index": index, "draw": torch.rand(()).item()}


def balanced_epoch(epoch: int) -> list[list[dict]]:
    sampler = EpochKeyedBatches(ClassBalancedBatchSampler([0, 1, 1], images_per_class=2, seed=0, num_batches=2))
    sampler.set_epoch(epoch)
    dataset = ItemSeeded(RandomDraws(), seed=5)
    return [[dataset[key] for key in batch] for batch in sampler]


def test_a_singleton_class_gets_two_different_views_and_epochs_replay():
    first, second = balanced_epoch(0)
    singleton = [item for item in first if item["index"] == 0]
    assert len(singleton) == 2, "class 0 has one image, so the sampler draws it twice"
    assert singleton[0]["draw"] != singleton[1]["draw"], "the two views of the singleton are identical"
    repeats = [item["draw"] for batch in (first, second) for item in batch if item["index"] == 1]
    assert len(set(repeats)) == len(repeats), "an image drawn again in the same epoch got the same augmentation"
    assert balanced_epoch(0) == [first, second], "the same epoch must replay bit for bit (exact resume)"
    assert balanced_epoch(1) != [first, second]


def test_draws_with_replacement_are_augmented_independently():
    sampler = EpochSeededSampler(3, seed=1, num_samples=12)
    loader = DataLoader(ItemSeeded(RandomDraws(), seed=5), sampler=sampler, batch_size=None)
    items = list(loader)
    assert len({item["index"] for item in items}) < len(items), "12 draws of 3 images must repeat some"
    assert len({item["draw"] for item in items}) == len(items)
    assert [key[1] for key in sampler] == list(range(12)), "keys carry the draw position"
    assert list(loader) == items
