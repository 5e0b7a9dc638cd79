"""Chunked, checkpointed embedding keeps NT-Xent's loss and gradient those of the whole batch, and the global batch
and the LARS learning rate follow the devices."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from marsvision.losses.nt_xent import nt_xent_loss
from marsvision.training.chunked import checkpointed_chunks, checkpointed_chunks_of_many
from marsvision.training.config import ConfigError, load_config
from marsvision.training.scaling import resolve_batch_and_lr

TAU = 0.5


def views(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(6, 5, generator=generator, dtype=torch.float64), torch.randn(
        6, 5, generator=generator, dtype=torch.float64
    )


def loss_and_gradients(network: nn.Module, chunk: int | None) -> tuple[float, list[torch.Tensor]]:
    network.zero_grad()
    first, second = views()
    loss = nt_xent_loss(
        checkpointed_chunks(network, network, first, chunk), checkpointed_chunks(network, network, second, chunk), TAU
    )
    loss.backward()
    return loss.item(), [p.grad.clone() for p in network.parameters()]


def test_chunks_give_the_one_shot_loss_and_gradient():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    whole, whole_gradients = loss_and_gradients(network, None)
    chunked, chunked_gradients = loss_and_gradients(network, 2)
    assert chunked == pytest.approx(whole, rel=1e-12)
    for a, b in zip(chunked_gradients, whole_gradients, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # plain accumulation (a loss per chunk of 2) would see 2 negatives per view instead of 10: another loss
    first, second = views()
    with torch.no_grad():
        per_chunk = [
            nt_xent_loss(network(a), network(b), TAU) for a, b in zip(first.split(2), second.split(2), strict=True)
        ]
    assert abs(sum(per_chunk).item() / len(per_chunk) - whole) > 1e-3


def test_batchnorm_sees_each_chunk_once_and_the_gradient_is_the_checkpoint_free_one():
    torch.manual_seed(1)
    network = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 4)).double()
    reference = copy.deepcopy(network)
    chunked, chunked_gradients = loss_and_gradients(network, 3)
    first, second = views()
    z1 = torch.cat([reference(part) for part in first.split(3)])  # the same chunks, no checkpointing
    z2 = torch.cat([reference(part) for part in second.split(3)])
    loss = nt_xent_loss(z1, z2, TAU)
    loss.backward()
    assert chunked == pytest.approx(loss.item(), rel=1e-12)
    for a, b in zip(chunked_gradients, [p.grad for p in reference.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for key in ("1.running_mean", "1.running_var"):  # four chunks updated the statistics four times, not eight
        torch.testing.assert_close(network.state_dict()[key], reference.state_dict()[key], rtol=0, atol=0)


def test_several_outputs_are_chunked_each_with_the_one_shot_values_and_gradient():
    torch.manual_seed(2)
    trunk, first_head, second_head = nn.Linear(5, 8).double(), nn.Linear(8, 3).double(), nn.Linear(8, 2).double()
    network = nn.ModuleList([trunk, first_head, second_head])

    def two_outputs(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = torch.tanh(trunk(rows))
        return first_head(hidden), second_head(hidden)

    def outputs_and_gradients(chunk: int | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        network.zero_grad()
        outputs = checkpointed_chunks_of_many(network, two_outputs, views()[0], chunk)
        (outputs[0].sin().sum() + outputs[1].pow(2).sum()).backward()
        return [o.detach() for o in outputs], [p.grad.clone() for p in network.parameters()]

    whole, whole_gradients = outputs_and_gradients(None)
    chunked, chunked_gradients = outputs_and_gradients(4)  # chunks of 4 and 2 rows
    assert [o.shape for o in chunked] == [(6, 3), (6, 2)]
    for a, b in zip([*chunked, *chunked_gradients], [*whole, *whole_gradients], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_the_global_batch_and_the_lars_rate_follow_the_devices():
    paper = load_config("simclr-ai4mars", ["trainer.devices=4"])
    resolved = resolve_batch_and_lr(paper)
    assert resolved.data.batch_size == 256 and resolved.optim.lr == pytest.approx(0.3 * 1024 / 256)
    assert resolve_batch_and_lr(resolved).data.batch_size == 256, "resolving twice changes nothing (resume)"
    one = resolve_batch_and_lr(load_config("simclr-ai4mars", ["trainer.devices=1"]))
    assert one.data.batch_size == 1024 and one.optim.lr == pytest.approx(1.2)
    per_device = resolve_batch_and_lr(
        load_config("simclr-ai4mars", ["data.global_batch_size=null", "data.batch_size=64", "trainer.devices=2"])
    )
    assert per_device.optim.lr == pytest.approx(0.3 * 128 / 256), "the lr follows the real global batch"
    with pytest.raises(ConfigError, match="global_batch_size=1024 does not divide over 3 devices"):
        resolve_batch_and_lr(load_config("simclr-ai4mars", ["trainer.devices=3"]))
