"""FIFO queue of contrastive keys with their class distributions and whether each came labeled (SsCL's memory).

MoCo (He et al. 2020) keeps the keys of recent batches as extra negatives; SsCL (Zhang et al., TMM 2022) also
needs each key's class: a one-hot label for a labeled image (the co-calibration contrasts against those) and the
calibrated prediction for an unlabeled one (the neighbour search reads it). Entries are detached. The buffers are
in ``state_dict``, so the queue survives checkpoint and resume. Under ``torch.distributed`` every rank pushes the
entries of all ranks in rank order (every rank holds the same batch size), so all ranks hold the same queue.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from marsvision.losses.distributed import gather_with_grad


class QueueEntries(NamedTuple):
    """What a queue holds: keys (J, D), class distributions (J, C) and the labeled flags (J,) bool."""

    keys: Tensor
    distributions: Tensor
    labeled: Tensor


class KeyQueue(nn.Module):
    """The newest ``size`` (key, class distribution, labeled) entries, in a ring buffer.

    Buffers: ``keys`` (Q, D) and ``distributions`` (Q, C) float32, ``labeled`` (Q,) bool, ``ptr`` and ``count``
    (0-d int64: the next write slot and the entries held, ≤ Q).

    Args:
        size: Q, the entries kept.
        dim: D, the key dimension.
        num_classes: C.

    Raises:
        ValueError: if a size is not positive.
    """

    keys: Tensor
    distributions: Tensor
    labeled: Tensor
    ptr: Tensor
    count: Tensor

    def __init__(self, size: int, dim: int, num_classes: int) -> None:
        super().__init__()
        if min(size, dim, num_classes) < 1:
            raise ValueError(f"size, dim and num_classes must be positive, got {size}, {dim}, {num_classes}")
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("distributions", torch.zeros(size, num_classes))
        self.register_buffer("labeled", torch.zeros(size, dtype=torch.bool))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.keys.shape[1]}, num_classes={self.distributions.shape[1]}"

    def entries(self) -> QueueEntries:
        """The entries held, in slot order (the order does not matter to the losses that read them)."""
        held = int(self.count)
        return QueueEntries(self.keys[:held], self.distributions[:held], self.labeled[:held])

    @torch.no_grad()
    def push(self, keys: Tensor, distributions: Tensor, labeled: Tensor) -> None:
        """Enqueue (N, D) keys with their (N, C) distributions and (N,) labeled flags, oldest dropped first.

        A collective call under ``torch.distributed``: every rank must push, with the same N.

        Raises:
            ValueError: on shapes that do not match the queue's or each other.
        """
        n = keys.shape[0]
        if keys.shape[1:] != self.keys.shape[1:] or distributions.shape != (n, self.distributions.shape[1]):
            raise ValueError(
                f"expected keys (N, {self.keys.shape[1]}) and distributions (N, {self.distributions.shape[1]}), "
                f"got {tuple(keys.shape)} and {tuple(distributions.shape)}"
            )
        if labeled.shape != (n,):
            raise ValueError(f"labeled must be ({n},), got {tuple(labeled.shape)}")
        new_keys = gather_with_grad(keys.detach().to(self.keys))[-self.size :]
        new_distributions = gather_with_grad(distributions.detach().to(self.distributions))[-self.size :]
        new_labeled = gather_with_grad(labeled.to(self.distributions))[-self.size :] > 0.5  # NCCL gathers floats
        slots = (self.ptr + torch.arange(new_keys.shape[0], device=self.keys.device)) % self.size
        self.keys[slots] = new_keys
        self.distributions[slots] = new_distributions
        self.labeled[slots] = new_labeled
        self.ptr.copy_((self.ptr + new_keys.shape[0]) % self.size)
        self.count.copy_(torch.clamp(self.count + new_keys.shape[0], max=self.size))
