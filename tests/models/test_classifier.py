"""Tests for the semi-supervised classifier of method B-cls."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from marsvision.models.classifier import SemiSupervisedClassifier


class TinyEncoder(nn.Module):
    """Stand-in encoder under the ARCHITECTURE.md contract."""

    def __init__(self, in_channels: int = 1, feature_channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, feature_channels, 3, padding=1)
        self.feature_channels = feature_channels

    def forward_features(self, x: Tensor) -> Tensor:
        return torch.relu(self.conv(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x).mean(dim=(-2, -1))


def test_output_names_and_shapes() -> None:
    model = SemiSupervisedClassifier(TinyEncoder(), num_classes=5)
    x = torch.rand(3, 1, 16, 16)
    out = model(x)
    assert set(out) == {"logits", "features"}
    assert out["logits"].shape == (3, 5)
    assert out["features"].shape == (3, 8)
    assert model.embed_supervised(x).shape == (3, 128)
    assert model.embed_unsupervised(x).shape == (3, 128)
    torch.testing.assert_close(out["logits"], model.classifier(model.encoder(x)))


def test_heads_are_two_layer_mlps_and_independent() -> None:
    encoder = TinyEncoder()
    model = SemiSupervisedClassifier(encoder, num_classes=5, projection_dim=16, hidden_dim=12)
    for head in (model.supervised_head, model.unsupervised_head):
        linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [(8, 12), (12, 16)]
    x = torch.rand(2, 1, 8, 8)
    assert not torch.allclose(model.embed_supervised(x), model.embed_unsupervised(x))
    # H_s's loss reaches B and H_s but not H_u or H_cls
    model.embed_supervised(x).sum().backward()
    assert encoder.conv.weight.grad is not None
    assert all(p.grad is not None for p in model.supervised_head.parameters())
    assert all(p.grad is None for p in model.unsupervised_head.parameters())
    assert model.classifier.weight.grad is None


def test_hidden_dim_defaults_to_feature_channels() -> None:
    model = SemiSupervisedClassifier(TinyEncoder(feature_channels=6), num_classes=3)
    first = next(m for m in model.supervised_head.modules() if isinstance(m, nn.Linear))
    assert (first.in_features, first.out_features) == (6, 6)


def test_parameter_groups_paper_learning_rates() -> None:
    encoder = TinyEncoder()
    model = SemiSupervisedClassifier(encoder, num_classes=5)
    groups = model.parameter_groups()
    assert [g["name"] for g in groups] == ["classifier", "backbone"]
    assert [g["lr"] for g in groups] == [1e-3, 1e-6]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.classifier.parameters()}
    optimizer = torch.optim.Adam(groups)  # the groups are accepted as they are
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-6]
    assert encoder.conv.bias is not None
    encoder.conv.bias.requires_grad_(False)
    assert len(model.parameter_groups()[1]["params"]) == len(groups[1]["params"]) - 1


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="feature_channels"):
        SemiSupervisedClassifier(nn.Conv2d(1, 2, 1), num_classes=3)
    with pytest.raises(ValueError):
        SemiSupervisedClassifier(TinyEncoder(), num_classes=0)
    with pytest.raises(ValueError):
        SemiSupervisedClassifier(TinyEncoder(), num_classes=3).parameter_groups(head_lr=-1.0)


def test_with_registry_encoder() -> None:
    encoders = pytest.importorskip("marsvision.models.encoders")
    encoder = encoders.create_encoder("resnet18", in_channels=3)
    model = SemiSupervisedClassifier(encoder, num_classes=24)
    out = model(torch.rand(2, 3, 32, 32))
    assert out["logits"].shape == (2, 24)
    assert out["features"].shape == (2, 512)


def test_dropout_before_the_classifier_acts_in_training_only() -> None:
    model = SemiSupervisedClassifier(TinyEncoder(), num_classes=5, dropout=0.5)
    x = torch.rand(4, 1, 16, 16)
    features = model.encoder(x).detach()
    model.eval()
    torch.testing.assert_close(model(x)["logits"], model.classifier(features))
    model.train()
    torch.manual_seed(0)
    logits = model(x)["logits"]
    torch.manual_seed(0)
    kept = torch.nn.functional.dropout(torch.ones_like(features), 0.5, training=True)  # 0 or 1/(1 − p) = 2
    assert set(kept.unique().tolist()) == {0.0, 2.0}
    torch.testing.assert_close(logits, model.classifier(features * kept))
    assert torch.equal(model(x)["features"], features)  # the features returned are those before dropout
    assert isinstance(SemiSupervisedClassifier(TinyEncoder(), num_classes=5).dropout, nn.Identity)
    with pytest.raises(ValueError):
        SemiSupervisedClassifier(TinyEncoder(), num_classes=5, dropout=1.0)
