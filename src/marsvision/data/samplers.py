"""Class-balanced batch sampler for the supervised inter-class contrastive loss (paper 002, §4)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Yield batches holding ``images_per_class`` different images of every class present in ``targets``.

    A batch is ordered class by class: ``[c0 img a, c0 img b, c1 img a, c1 img b, …]`` (so ``batch[k::2]``
    with ``k = 0, 1`` gives the two images per class used by L_s). A class with fewer images than
    ``images_per_class`` repeats them. Within a class, images are drawn without replacement through a shuffled
    cycle, so every image appears before any repeats. ``num_batches`` defaults to
    ``len(targets) // batch_size`` (at least 1).
    Call ``set_epoch`` for a different, reproducible order per epoch.
    """

    def __init__(
        self,
        targets: Sequence[int],
        images_per_class: int = 2,
        seed: int = 0,
        num_batches: int | None = None,
    ) -> None:
        if images_per_class < 1:
            raise ValueError(f"images_per_class must be at least 1, got {images_per_class}")
        if len(targets) == 0:
            raise ValueError("targets is empty")
        labels = np.asarray(targets, dtype=np.int64)
        self.classes = sorted(int(c) for c in np.unique(labels))
        """Classes that have at least one image, in batch order."""
        self.members = {c: np.flatnonzero(labels == c) for c in self.classes}
        self.images_per_class = images_per_class
        self.seed = seed
        self.epoch = 0
        batch = self.batch_size
        self.num_batches = num_batches if num_batches is not None else max(1, len(labels) // batch)
        if self.num_batches < 1:
            raise ValueError(f"num_batches must be at least 1, got {num_batches}")

    @property
    def batch_size(self) -> int:
        return len(self.classes) * self.images_per_class

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch used to seed the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = {c: list(rng.permutation(m)) for c, m in self.members.items()}
        for _ in range(self.num_batches):
            batch: list[int] = []
            for c in self.classes:
                members = self.members[c]
                if len(members) <= self.images_per_class:
                    picks = [members[i % len(members)] for i in range(self.images_per_class)]
                else:
                    picks = []
                    while len(picks) < self.images_per_class:
                        if not queues[c]:
                            queues[c] = list(rng.permutation(members))
                        candidate = queues[c].pop()
                        if candidate not in picks:
                            picks.append(candidate)
                batch.extend(int(i) for i in picks)
            yield batch
