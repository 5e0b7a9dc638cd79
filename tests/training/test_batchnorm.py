"""Perturbed passes leave BatchNorm's running statistics as they were, and still normalise with batch statistics."""

from __future__ import annotations

import torch
from torch import nn

from marsvision.training.batchnorm import running_statistics_frozen


def test_running_statistics_stay_and_momentum_comes_back():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3), nn.ReLU(), nn.BatchNorm2d(3, momentum=0.3))
    network.train()
    network(torch.randn(4, 1, 5, 5))
    before = [tensor.clone() for tensor in network.state_dict().values() if tensor.is_floating_point()]
    running_mean = network[1].running_mean.clone()
    shifted = torch.randn(4, 1, 5, 5) * 10 + 5
    with running_statistics_frozen(network):
        out = network(shifted)
    after = [tensor for tensor in network.state_dict().values() if tensor.is_floating_point()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # training-mode normalisation used the batch's own statistics: each channel's output has mean ~0 before ReLU
    normalised = network[1](network[0](shifted))
    assert normalised.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert [network[1].momentum, network[3].momentum] == [0.1, 0.3]
    assert out.shape == (4, 3, 5, 5)
    network(shifted)  # outside the block the running averages move again
    assert not torch.equal(network[1].running_mean, running_mean)
