"""The benchmarks' FLOP count: each real operation once, grouped convolutions' backward included."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the repository's benchmarks/, not this folder (see test_accuracy_peers.py)
    sys.path.insert(0, str(ROOT))

from benchmarks.common import flop_counter  # noqa: E402


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_a_convolutions_backward_costs_two_forwards_whatever_its_groups(groups: int):
    conv = torch.nn.Conv2d(8, 16, 3, padding=1, stride=2, groups=groups, bias=False)
    images = torch.rand(2, 8, 10, 10, requires_grad=True)
    forward = 2 * 2 * (16 * 8 // groups * 9) * (5 * 5)  # 2 · N · |w| · output positions
    with flop_counter() as counter:
        out = conv(images)
    assert counter.get_total_flops() == forward
    with flop_counter() as counter:
        out.sum().backward()
    assert counter.get_total_flops() == 2 * forward, "the input's and the weight's gradient"
    with flop_counter() as counter:
        conv(images.detach()).sum().backward()
    assert counter.get_total_flops() == 2 * forward, "forward, and the weight's gradient only"


def test_the_doubled_batch_step_counts_twice_the_flops_of_the_recipes_step():
    from benchmarks.utilisation import measure

    cpu = torch.device("cpu")
    recipe, doubled = (measure("finetune", "tiny", cpu, "32", batch_factor=factor) for factor in (1, 2))
    assert doubled["batch_size"] == 2 * recipe["batch_size"]
    assert doubled["gflop_per_step"] == pytest.approx(2 * recipe["gflop_per_step"], rel=1e-9)
