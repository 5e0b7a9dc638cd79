import pytest
import torch
import torch.multiprocessing as mp
from torchmetrics.classification import MulticlassConfusionMatrix

from marsvision.data.classes import IGNORE_INDEX
from marsvision.evaluation.confusion import ConfusionMatrix, confusion_matrix

from ._ddp_worker import ddp_worker


def test_hand_counted_pairs_rows_are_true_class():
    target = torch.tensor([[0, 0, 1], [2, IGNORE_INDEX, 1]])
    pred = torch.tensor([[0, 1, 1], [0, 2, 2]])
    cm = confusion_matrix(pred=pred, target=target, num_classes=3)
    expected = torch.tensor([[1, 1, 0], [0, 1, 1], [1, 0, 0]])
    assert cm.dtype == torch.long
    assert torch.equal(cm, expected)


def test_keyword_only():
    with pytest.raises(TypeError):
        confusion_matrix(torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 2)  # type: ignore[misc]


def test_all_ignored_gives_zero_matrix():
    target = torch.full((4, 4), IGNORE_INDEX)
    pred = torch.zeros(4, 4, dtype=torch.long)
    assert confusion_matrix(pred=pred, target=target, num_classes=3).sum() == 0


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (torch.tensor([0, 1]), torch.tensor([0, 3]), "target values"),
        (torch.tensor([0, 5]), torch.tensor([0, 1]), "pred values"),
        (torch.tensor([0, 1, 1]), torch.tensor([0, 1]), "shape"),
        (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), "integer"),
    ],
)
def test_bad_input_raises(pred, target, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(pred=pred, target=target, num_classes=3)


def test_matches_torchmetrics_with_ignored_pixels():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (4, 17, 19), generator=gen)
    target[torch.rand(target.shape, generator=gen) < 0.2] = IGNORE_INDEX
    pred = torch.randint(0, 5, target.shape, generator=gen)
    ref = MulticlassConfusionMatrix(num_classes=5, ignore_index=IGNORE_INDEX)(pred, target)
    assert torch.equal(confusion_matrix(pred=pred, target=target, num_classes=5), ref.long())


def test_streaming_equals_one_shot_and_reset():
    gen = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (6, 8, 8), generator=gen)
    pred = torch.randint(0, 4, (6, 8, 8), generator=gen)
    acc = ConfusionMatrix(4)
    for i in range(0, 6, 2):
        acc.update(pred=pred[i : i + 2], target=target[i : i + 2])
    assert torch.equal(acc.compute(), confusion_matrix(pred=pred, target=target, num_classes=4))
    assert torch.equal(acc.compute(sync=False), acc.local)
    acc.reset()
    assert acc.compute().sum() == 0


def test_ddp_sync_sums_over_processes(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    init_file = str(tmp_path / "ddp_init")
    procs = [ctx.Process(target=ddp_worker, args=(r, 2, init_file, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    expected = [[1, 0, 0], [0, 2, 0], [0, 0, 0]]
    for rank, total, total_again, local in results:
        assert total == expected
        assert total_again == expected
        assert local[rank][rank] == rank + 1 and sum(map(sum, local)) == rank + 1


def test_state_follows_device_and_dtype():
    acc = ConfusionMatrix(2)
    acc.update(pred=torch.tensor([1], dtype=torch.uint8), target=torch.tensor([1], dtype=torch.int32))
    out = acc.compute()
    assert out.dtype == torch.long and out[1, 1] == 1


def test_validate_false_skips_range_check_but_counts_valid_input():
    target = torch.tensor([0, 1, 1, IGNORE_INDEX])
    pred = torch.tensor([0, 1, 0, 7])
    cm = confusion_matrix(pred=pred, target=target, num_classes=2, validate=False)
    assert torch.equal(cm, torch.tensor([[1, 0], [1, 1]]))
