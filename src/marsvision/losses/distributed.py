"""All-gather across processes with gradients, for losses whose negatives come from every device."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums the incoming gradients over ranks and keeps the local slice.

    Every rank's loss depends on every rank's samples (as negatives), so the gradient of the global loss
    w.r.t. the local samples is the sum over ranks of each rank's gradient w.r.t. them: an all-reduce (sum)
    of the gradient of the gathered tensor, of which this rank keeps its own rows. Merely detaching the
    other ranks' parts (and keeping only the local gradient) would drop the terms where the local samples
    act as other ranks' negatives, and would not reproduce the single-process gradient.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        world = dist.get_world_size()
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
        counts = [int(s.item()) for s in sizes]
        if len(set(counts)) != 1:
            raise ValueError(f"gather_with_grad needs the same batch size on every rank, got {counts}")
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank = dist.get_rank()
        ctx.batch = x.shape[0]
        return torch.cat(parts, dim=0)  # (world·n, ...), rank r's rows at [r·n, (r+1)·n)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (n, ...) from all ranks in rank order → (world·n, ...), gradients flowing back.

    Without a process group (or with one rank) this returns ``x`` unchanged. The backward all-reduces the
    gradient, so every rank must call this the same number of times in the same order (as for any
    collective). With DDP, which averages parameter gradients over ranks, a loss that averages over the
    local anchors then gives exactly the gradient of the single-process loss on the full batch.

    Raises:
        ValueError: the ranks hold different batch sizes.
    """
    if not is_distributed():
        return x
    result: Tensor = _GatherWithGrad.apply(x)
    return result


def rank_and_world() -> tuple[int, int]:
    """Return (rank, world size); (0, 1) without a process group."""
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


__all__ = ["gather_with_grad", "is_distributed", "rank_and_world"]
