"""Per-class FIFO memory bank of class-mean embeddings (paper 002, §5.1, method B-seg).

The bank M = {m_c}, c = 1..C, holds one queue per class. After each training step, for every image and
every class c present in that image, the mean of the image's embeddings labeled c is pushed to m_c (the
oldest entry is dropped once the queue holds ``queue_len`` entries). The prototype of class c is the mean
m̄_c of its queue. Entries are detached: the bank never carries gradients.

Paper values: queue length 32 (paper 002, §5.3), 128-dimensional embeddings (output of H_s).

The queues are buffers, so the bank lands in ``state_dict`` and survives checkpoint/resume. Under
``torch.distributed`` every rank gathers the new entries of all ranks (in rank order) before pushing, so all
ranks hold the same bank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX


def per_image_class_means(
    embeddings: Tensor, labels: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> tuple[Tensor, Tensor]:
    """Mean embedding of each (image, class) pair present in a batch.

    Args:
        embeddings: (N, D, h, w) embedding map.
        labels: (N, h, w) int64 labels at the embedding resolution; ``ignore_index`` locations are skipped.
        num_classes: C; labels must lie in [0, C) or equal ``ignore_index``.
        ignore_index: label value taking no part.

    Returns:
        ``(means, classes)``: means (M, D) in the embeddings' dtype promoted to float32 at least, classes
        (M,) int64, ordered image-major then class-minor (image 0's classes ascending, then image 1's, ...).

    Raises:
        ValueError: on mismatched shapes or a label outside [0, C) that is not ``ignore_index``.
    """
    if embeddings.dim() != 4 or labels.dim() != 3:
        raise ValueError(
            f"expected embeddings (N, D, h, w) and labels (N, h, w), got {tuple(embeddings.shape)} "
            f"and {tuple(labels.shape)}"
        )
    n, d, h, w = embeddings.shape
    if labels.shape != (n, h, w):
        raise ValueError(
            f"labels {tuple(labels.shape)} must match the embedding map (N, h, w) = {(n, h, w)}; "
            "downsample them first (marsvision.losses.elementwise_contrastive.downsample_labels)"
        )
    labels = labels.long()
    labeled = labels != ignore_index  # (N, h, w)
    if bool(((labels < 0) | (labels >= num_classes))[labeled].any()):
        raise ValueError(f"labels must lie in [0, {num_classes}) or equal {ignore_index}")

    dtype = torch.promote_types(embeddings.dtype, torch.float32)
    flat = embeddings.detach().to(dtype).permute(0, 2, 3, 1).reshape(n * h * w, d)  # (N·h·w, D)
    image = torch.arange(n, device=labels.device).view(n, 1, 1).expand(n, h, w)
    slot = (image * num_classes + labels.clamp(0, num_classes - 1)).reshape(-1)  # (N·h·w,) in [0, N·C)
    keep = labeled.reshape(-1)

    sums = torch.zeros(n * num_classes, d, dtype=dtype, device=embeddings.device)
    sums.index_add_(0, slot[keep], flat[keep])  # (N·C, D)
    counts = torch.bincount(slot[keep], minlength=n * num_classes)  # (N·C,)
    present = counts > 0
    means = sums[present] / counts[present].unsqueeze(1).to(dtype)  # (M, D)
    classes = torch.arange(n * num_classes, device=labels.device)[present] % num_classes  # (M,)
    return means, classes


def _all_gather_entries(means: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
    """Concatenate every rank's entries in rank order (uneven counts are padded, then trimmed)."""
    world = dist.get_world_size()
    count = torch.tensor([means.shape[0]], dtype=torch.long, device=means.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    longest = max(max(sizes), 1)  # all_gather needs a non-empty tensor even when no rank has entries

    padded_means = means.new_zeros(longest, means.shape[1])
    padded_means[: means.shape[0]] = means
    padded_classes = classes.new_zeros(longest)
    padded_classes[: classes.shape[0]] = classes
    gathered_means = [torch.empty_like(padded_means) for _ in range(world)]
    gathered_classes = [torch.empty_like(padded_classes) for _ in range(world)]
    dist.all_gather(gathered_means, padded_means)
    dist.all_gather(gathered_classes, padded_classes)
    all_means = torch.cat([m[:s] for m, s in zip(gathered_means, sizes, strict=True)])  # (Σ M_r, D)
    all_classes = torch.cat([c[:s] for c, s in zip(gathered_classes, sizes, strict=True)])  # (Σ M_r,)
    return all_means, all_classes


class ClassMemoryBank(nn.Module):
    """Per-class FIFO queues of per-image class-mean embeddings, M = {m_c} (paper 002, §5.1).

    Storage: a ring buffer per class. Buffers (all in ``state_dict``): ``queue`` (C, L, D) float32,
    ``ptr`` (C,) int64 (next write slot), ``size`` (C,) int64 (entries held, ≤ L).

    Args:
        num_classes: C.
        dim: embedding dimension D (128 in the paper).
        queue_len: L, entries kept per class (32 in the paper, §5.3).
        ignore_index: label value that is never pushed.

    Raises:
        ValueError: if ``num_classes``, ``dim`` or ``queue_len`` is not positive.
    """

    queue: Tensor
    ptr: Tensor
    size: Tensor

    def __init__(self, num_classes: int, dim: int, queue_len: int = 32, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        if num_classes < 1 or dim < 1 or queue_len < 1:
            raise ValueError(f"num_classes, dim and queue_len must be positive, got {num_classes}, {dim}, {queue_len}")
        self.num_classes = num_classes
        self.dim = dim
        self.queue_len = queue_len
        self.ignore_index = ignore_index
        self.register_buffer("queue", torch.zeros(num_classes, queue_len, dim))
        self.register_buffer("ptr", torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer("size", torch.zeros(num_classes, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, queue_len={self.queue_len}"

    @torch.no_grad()
    def reset(self) -> None:
        """Empty every queue."""
        self.queue.zero_()
        self.ptr.zero_()
        self.size.zero_()

    @torch.no_grad()
    def push(self, embeddings: Tensor, labels: Tensor) -> None:
        """Enqueue, per image and per class present, the mean of that image's embeddings of that class.

        Under an initialised ``torch.distributed`` process group with more than one rank, the new entries
        of all ranks are gathered first (rank 0's, then rank 1's, ...) so that every rank pushes the same
        entries; every rank must call ``push`` (collective call).

        Args:
            embeddings: (N, D, h, w); detached here.
            labels: (N, h, w) int64 at the embedding resolution, ``ignore_index`` locations skipped.

        Raises:
            ValueError: on a wrong embedding dimension, mismatched shapes or out-of-range labels.
        """
        if embeddings.dim() != 4 or embeddings.shape[1] != self.dim:
            raise ValueError(f"expected embeddings (N, {self.dim}, h, w), got {tuple(embeddings.shape)}")
        means, classes = per_image_class_means(embeddings, labels, self.num_classes, self.ignore_index)
        means = means.to(device=self.queue.device, dtype=self.queue.dtype)
        classes = classes.to(self.queue.device)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            means, classes = _all_gather_entries(means, classes)
        self._enqueue(means, classes)

    def _enqueue(self, means: Tensor, classes: Tensor) -> None:
        """Write entries (M, D) with classes (M,) into the ring buffers, in the given order."""
        length = self.queue_len
        for c in torch.unique(classes).tolist():
            new = means[classes == c][-length:]  # (k, D), only the newest L can survive
            k = new.shape[0]
            slots = (self.ptr[c] + torch.arange(k, device=new.device)) % length  # (k,)
            self.queue[c, slots] = new
            self.ptr[c] = (self.ptr[c] + k) % length
            self.size[c] = torch.clamp(self.size[c] + k, max=length)

    def entries(self, class_index: int) -> Tensor:
        """Entries of one queue, oldest first: (size_c, D)."""
        if not 0 <= class_index < self.num_classes:
            raise ValueError(f"class_index must lie in [0, {self.num_classes}), got {class_index}")
        size = int(self.size[class_index])
        if size < self.queue_len:  # not yet wrapped: slots 0..size-1 in write order
            return self.queue[class_index, :size].clone()
        return torch.roll(self.queue[class_index], -int(self.ptr[class_index]), dims=0)

    def valid(self) -> Tensor:
        """(C,) bool: True for classes whose queue holds at least one entry."""
        return self.size > 0

    def prototypes(self) -> Tensor:
        """(C, D) queue means m̄_c (zeros for empty queues; mask them with :meth:`valid`)."""
        filled = torch.arange(self.queue_len, device=self.size.device) < self.size.unsqueeze(1)  # (C, L)
        sums = (self.queue * filled.unsqueeze(2)).sum(dim=1)  # (C, D)
        return sums / self.size.clamp(min=1).unsqueeze(1).to(sums.dtype)
