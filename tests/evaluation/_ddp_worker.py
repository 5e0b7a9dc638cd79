"""A DDP worker for test_confusion, kept in its own light module so that spawned processes import little."""

import torch
import torch.distributed as dist

from marsvision.evaluation.confusion import ConfusionMatrix


def ddp_worker(rank: int, world: int, init_file: str, queue) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = ConfusionMatrix(3)
        # rank r sees r + 1 pixels of class r, all predicted correctly
        acc.update(pred=torch.full((rank + 1,), rank), target=torch.full((rank + 1,), rank))
        total = acc.compute()
        total_again = acc.sync()  # syncing twice must not double-count
        queue.put((rank, total.tolist(), total_again.tolist(), acc.local.tolist()))
        dist.barrier()  # no rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()
