"""Tests for the dual-head DeepLabv3+ of method B-seg."""

from __future__ import annotations

import pytest
import segmentation_models_pytorch as smp
import torch

from marsvision.models.deeplabv3plus import DualHeadDeepLabV3Plus


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def model() -> DualHeadDeepLabV3Plus:
    torch.manual_seed(0)
    return DualHeadDeepLabV3Plus(encoder_name="resnet18", in_channels=1, num_classes=4, embedding_dim=128)


def test_output_shapes(model: DualHeadDeepLabV3Plus) -> None:
    model.train()
    out = model(torch.rand(2, 1, 64, 96))
    assert set(out) == {"logits", "embedding"}
    assert out["logits"].shape == (2, 4, 64, 96)
    assert out["embedding"].shape == (2, 128, 16, 24)
    assert torch.isfinite(out["logits"]).all() and torch.isfinite(out["embedding"]).all()


def test_without_embedding_and_eval_batch_of_one(model: DualHeadDeepLabV3Plus) -> None:
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 64, 64), with_embedding=False)
        full = model(torch.rand(1, 1, 64, 64))
    assert set(out) == {"logits"}
    assert out["logits"].shape == (1, 4, 64, 64)
    assert full["embedding"].shape == (1, 128, 16, 16)


def test_gradients_reach_every_trainable_parameter(model: DualHeadDeepLabV3Plus) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(1)
    out = model(torch.rand(2, 1, 32, 32, generator=gen))
    loss = (out["logits"] * torch.randn(out["logits"].shape, generator=gen)).sum() + (
        out["embedding"] * torch.randn(out["embedding"].shape, generator=gen)
    ).sum()
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    zero = [name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert not zero


def test_one_encoder_shared_by_both_heads(model: DualHeadDeepLabV3Plus) -> None:
    # exactly one encoder's parameters: total = smp's single-head DeepLabV3+ + a second decoder + 1x1 conv
    single = smp.DeepLabV3Plus(encoder_name="resnet18", encoder_weights=None, in_channels=1, classes=4)
    expected = _count(single) + _count(single.decoder) + (256 * 128 + 128)
    assert _count(model) == expected
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    others = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
    assert not encoder_ids & {id(p) for p in others}
    # each head alone back-propagates into the same encoder weights
    model.train()
    x = torch.rand(2, 1, 32, 32)
    for key in ("logits", "embedding"):
        model.zero_grad(set_to_none=True)
        model(x)[key].square().mean().backward()
        first_conv = next(iter(model.encoder.parameters()))
        assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_without_embedding_head() -> None:
    model = DualHeadDeepLabV3Plus(encoder_name="resnet18", with_embedding=False)
    assert not model.has_embedding
    assert not any(name.startswith("embedding") for name, _ in model.named_parameters())
    single = smp.DeepLabV3Plus(encoder_name="resnet18", encoder_weights=None, in_channels=1, classes=4)
    assert _count(model) == _count(single)
    out = model(torch.rand(2, 1, 32, 32))
    assert set(out) == {"logits"}
    with pytest.raises(ValueError, match="no embedding head"):
        model(torch.rand(2, 1, 32, 32), with_embedding=True)


def test_output_stride_8() -> None:
    model = DualHeadDeepLabV3Plus(encoder_name="resnet18", encoder_output_stride=8, embedding_dim=16)
    out = model(torch.rand(2, 1, 40, 40))
    assert out["logits"].shape == (2, 4, 40, 40)
    assert out["embedding"].shape == (2, 16, 10, 10)


def test_bad_arguments_raise(model: DualHeadDeepLabV3Plus) -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.rand(2, 1, 40, 40))
    with pytest.raises(ValueError, match="output_stride"):
        DualHeadDeepLabV3Plus(encoder_name="resnet18", encoder_output_stride=32)
