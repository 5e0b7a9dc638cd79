"""Tests for the per-class FIFO memory bank of method B-seg."""

from __future__ import annotations

import io
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.memory_bank import ClassMemoryBank, per_image_class_means


def _points(values: list[float], classes: list[int], dim: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """One 1x1 image per value: embedding filled with the value, label = its class."""
    emb = torch.tensor(values).view(-1, 1, 1, 1).expand(-1, dim, 1, 1).contiguous()
    lab = torch.tensor(classes).view(-1, 1, 1)
    return emb, lab


def test_per_image_class_means_excludes_ignore_and_orders_image_major() -> None:
    emb = torch.arange(2 * 2 * 2 * 2, dtype=torch.float32).view(2, 2, 2, 2)  # (N=2, D=2, 2, 2)
    lab = torch.tensor([[[1, 1], [0, IGNORE_INDEX]], [[IGNORE_INDEX, 0], [0, 0]]])
    means, classes = per_image_class_means(emb, lab, num_classes=3)
    assert classes.tolist() == [0, 1, 0]
    # image 0: class 0 = location (1,0); class 1 = mean of (0,0), (0,1)
    expected0 = emb[0, :, 1, 0]
    expected1 = emb[0, :, 0, :2].mean(dim=1)
    expected2 = torch.stack([emb[1, :, 0, 1], emb[1, :, 1, 0], emb[1, :, 1, 1]]).mean(dim=0)
    torch.testing.assert_close(means, torch.stack([expected0, expected1, expected2]))


def test_fifo_order_and_length_cap() -> None:
    bank = ClassMemoryBank(num_classes=2, dim=2, queue_len=3)
    bank.push(*_points([1.0, 2.0], [0, 0]))
    assert bank.entries(0)[:, 0].tolist() == [1.0, 2.0]
    bank.push(*_points([3.0, 10.0, 4.0], [0, 1, 0]))
    # cap 3: the oldest (1.0) is dropped, order kept oldest first
    assert bank.entries(0)[:, 0].tolist() == [2.0, 3.0, 4.0]
    assert bank.entries(1)[:, 0].tolist() == [10.0]
    bank.push(*_points([5.0], [0]))
    assert bank.entries(0)[:, 0].tolist() == [3.0, 4.0, 5.0]
    # more new entries than the cap in one push: only the newest 3 survive, in order
    bank.push(*_points([6.0, 7.0, 8.0, 9.0], [0, 0, 0, 0]))
    assert bank.entries(0)[:, 0].tolist() == [7.0, 8.0, 9.0]
    assert bank.size.tolist() == [3, 1]


def test_prototypes_and_valid() -> None:
    bank = ClassMemoryBank(num_classes=3, dim=2, queue_len=4)
    assert bank.valid().tolist() == [False, False, False]
    torch.testing.assert_close(bank.prototypes(), torch.zeros(3, 2))
    bank.push(*_points([1.0, 3.0, -2.0], [0, 0, 2]))
    assert bank.valid().tolist() == [True, False, True]
    torch.testing.assert_close(bank.prototypes(), torch.tensor([[2.0, 2.0], [0.0, 0.0], [-2.0, -2.0]]))
    # after wrapping, the mean is over the L newest entries only
    bank.push(*_points([5.0, 7.0, 9.0], [0, 0, 0]))
    torch.testing.assert_close(bank.prototypes()[0], torch.full((2,), (3.0 + 5.0 + 7.0 + 9.0) / 4))


def test_push_detaches_and_ignores_unlabeled_images() -> None:
    bank = ClassMemoryBank(num_classes=2, dim=2, queue_len=4)
    emb = torch.randn(2, 2, 3, 3, requires_grad=True)
    lab = torch.full((2, 3, 3), IGNORE_INDEX)
    lab[1, 0, 0] = 1
    bank.push(emb, lab)
    assert bank.size.tolist() == [0, 1]
    assert not bank.queue.requires_grad
    torch.testing.assert_close(bank.entries(1)[0], emb[1, :, 0, 0].detach())


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        ClassMemoryBank(num_classes=0, dim=2)
    with pytest.raises(ValueError):
        ClassMemoryBank(num_classes=2, dim=2, queue_len=0)
    bank = ClassMemoryBank(num_classes=2, dim=2)
    with pytest.raises(ValueError, match="labels must lie"):
        bank.push(*_points([1.0], [2]))
    with pytest.raises(ValueError):
        bank.push(torch.zeros(1, 3, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long))  # wrong D
    with pytest.raises(ValueError, match="downsample"):
        bank.push(torch.zeros(1, 2, 2, 2), torch.zeros(1, 4, 4, dtype=torch.long))


def test_state_dict_round_trip() -> None:
    torch.manual_seed(0)
    bank = ClassMemoryBank(num_classes=3, dim=4, queue_len=2)
    for _ in range(3):
        bank.push(torch.randn(2, 4, 3, 3), torch.randint(0, 3, (2, 3, 3)))
    assert set(bank.state_dict()) == {"queue", "ptr", "size"}
    buffer = io.BytesIO()
    torch.save(bank.state_dict(), buffer)
    buffer.seek(0)
    restored = ClassMemoryBank(num_classes=3, dim=4, queue_len=2)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    for c in range(3):
        torch.testing.assert_close(restored.entries(c), bank.entries(c))
    # resumed banks keep evolving identically (the ring pointer was restored too)
    emb, lab = torch.randn(1, 4, 2, 2), torch.tensor([[[0, 1], [2, 0]]])
    bank.push(emb, lab)
    restored.push(emb, lab)
    torch.testing.assert_close(restored.prototypes(), bank.prototypes())
    for c in range(3):
        torch.testing.assert_close(restored.entries(c), bank.entries(c))


def _rank_batch(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uneven per-rank batches: rank 0 has 2 images, rank 1 has 3 (one of them fully unlabeled)."""
    gen = torch.Generator().manual_seed(100 + rank)
    n = 2 + rank
    emb = torch.randn(n, 3, 4, 4, generator=gen)
    lab = torch.randint(0, 3, (n, 4, 4), generator=gen)
    if rank == 1:
        lab[0] = IGNORE_INDEX
        lab[2][lab[2] == 2] = IGNORE_INDEX
    return emb, lab


def _distributed_worker(rank: int, world: int, store_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # as DataLoader's forked workers do: no OpenMP pool inherited across fork
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=world)
    try:
        bank = ClassMemoryBank(num_classes=3, dim=3, queue_len=4)
        bank.push(*_rank_batch(rank))
        # second push: rank 0 contributes no entry at all, rank 1 a single labeled image
        emb, lab = _rank_batch(rank)
        if rank == 0:
            lab[:] = IGNORE_INDEX
        bank.push(emb[1:2], lab[1:2])
        torch.save(bank.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()  # no rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_distributed_push_gathers_in_rank_order() -> None:
    world = 2
    with tempfile.TemporaryDirectory() as tmp:
        store_file = os.path.join(tmp, "store")
        # fork: the children reuse the parent's imports (spawn re-imports torch, slow on a shared CPU)
        mp.start_processes(
            _distributed_worker, args=(world, store_file, tmp), nprocs=world, join=True, start_method="fork"
        )
        states = [torch.load(os.path.join(tmp, f"rank{r}.pt"), weights_only=True) for r in range(world)]

    reference = ClassMemoryBank(num_classes=3, dim=3, queue_len=4)
    batches = [_rank_batch(r) for r in range(world)]
    reference.push(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
    emb1, lab1 = _rank_batch(1)
    reference.push(emb1[1:2], lab1[1:2])  # rank 0's second push was empty

    for state in states:
        for key, value in reference.state_dict().items():
            torch.testing.assert_close(state[key], value, msg=f"buffer {key} differs")
    # the ring buffers are compared slot by slot, so the comparison above also checks the rank order
    assert reference.size.tolist() == [4, 4, 4]
