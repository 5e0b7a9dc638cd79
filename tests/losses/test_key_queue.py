"""Tests for the FIFO key queue of SsCL's memory."""

from __future__ import annotations

import pytest
import torch

from marsvision.losses.key_queue import KeyQueue


def _push(queue: KeyQueue, values: list[float], labeled: list[bool]) -> None:
    keys = torch.tensor(values).unsqueeze(1).repeat(1, 2)  # key i = (v_i, v_i)
    distributions = torch.tensor(values).unsqueeze(1).repeat(1, 3)
    queue.push(keys, distributions, torch.tensor(labeled))


def test_fills_then_drops_the_oldest():
    queue = KeyQueue(size=4, dim=2, num_classes=3)
    assert queue.entries().keys.shape == (0, 2)
    _push(queue, [1.0, 2.0, 3.0], [True, False, True])
    held = queue.entries()
    assert held.keys[:, 0].tolist() == [1.0, 2.0, 3.0] and held.labeled.tolist() == [True, False, True]
    _push(queue, [4.0, 5.0], [False, False])  # 5 overwrites the oldest, 1
    held = queue.entries()
    assert sorted(held.keys[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert held.distributions[:, 2].tolist() == held.keys[:, 0].tolist()
    assert held.labeled.sum().item() == 1
    _push(queue, [6.0, 7.0, 8.0, 9.0, 10.0], [True] * 5)  # more than the queue holds: the newest four stay
    assert sorted(queue.entries().keys[:, 0].tolist()) == [7.0, 8.0, 9.0, 10.0]


def test_state_dict_round_trip_restores_the_queue():
    queue = KeyQueue(size=3, dim=2, num_classes=3)
    _push(queue, [1.0, 2.0], [True, False])
    restored = KeyQueue(size=3, dim=2, num_classes=3)
    restored.load_state_dict(queue.state_dict())
    _push(queue, [3.0, 4.0], [False, True])
    _push(restored, [3.0, 4.0], [False, True])
    for a, b in zip(queue.entries(), restored.entries(), strict=True):
        assert torch.equal(a, b)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        KeyQueue(size=0, dim=2, num_classes=3)
    queue = KeyQueue(size=3, dim=2, num_classes=3)
    with pytest.raises(ValueError):
        queue.push(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError):
        queue.push(torch.zeros(2, 2), torch.zeros(2, 3), torch.zeros(3, dtype=torch.bool))
