"""Perturbed passes leave BatchNorm's running statistics as they were, and still normalise with batch statistics."""

from __future__ import annotations

import torch
from torch import nn

from marsvision.training.batchnorm import recompute_running_statistics, running_statistics_frozen


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


def test_recomputed_statistics_are_the_batches_average_whatever_the_run_left():
    network = nn.Sequential(nn.BatchNorm2d(3, momentum=0.3)).double()
    network[0].running_mean.fill_(7.0)  # what a run on other images left behind
    network[0].running_var.fill_(0.01)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 5, 5, generator=generator, dtype=torch.float64) * (i + 1) + i for i in range(3)]
    recompute_running_statistics(network, batches)
    # momentum None: the plain mean over batches of each batch's mean and unbiased variance per channel
    means = torch.stack([batch.mean(dim=(0, 2, 3)) for batch in batches]).mean(0)
    variances = torch.stack([batch.transpose(0, 1).reshape(3, -1).var(dim=1) for batch in batches]).mean(0)
    torch.testing.assert_close(network[0].running_mean, means)
    torch.testing.assert_close(network[0].running_var, variances)
    assert network[0].momentum == 0.3 and not network.training
