"""The loss-changing Table 3 baselines: center loss, triplet loss, LDAM-DRW, and the dropout option."""

from __future__ import annotations

import pytest
import torch

from marsvision.losses.class_balanced import class_balanced_weights
from marsvision.models.classifier_heads import CosineLinear
from marsvision.training.cls_loss_baselines import CenterLossClassification, LDAMDRWClassification
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.registry import method_class

TINY = ["model.encoder=r18_0.25x_sk0", "data.channels=3", "model.projection_dim=8"]


def _classes() -> ClassInfo:
    return ClassInfo(["a", "b", "c"], samples_per_class=[40, 5, 1])


def test_streams_of_the_loss_baselines() -> None:
    assert method_class("cls-center").streams == ("labeled",)
    assert method_class("cls-triplet").streams == ("labeled", "balanced")
    assert method_class("cls-ldam-drw").streams == ("labeled",)


def test_center_loss_moves_the_centers_of_the_classes_in_the_batch() -> None:
    module = CenterLossClassification(load_config(None, TINY), _classes())
    images, targets = torch.rand(4, 3, 32, 32), torch.tensor([0, 0, 2, 2])
    parts = module.labeled_parts(images, targets)
    assert set(parts) == {"ce", "center"} and parts["center"].item() > 0
    centers = module.center_loss.centers
    assert centers[[0, 2]].abs().sum() > 0 and centers[1].abs().sum() == 0


def test_drw_switches_to_class_balanced_weights_at_drw_epoch() -> None:
    config = load_config(None, [*TINY, "clsbaseline.drw_epoch=3", "clsbaseline.drw_beta=0.99"])
    module = LDAMDRWClassification(config, _classes())
    assert isinstance(module.model.classifier, CosineLinear)
    assert module.class_weights(0) is None and module.class_weights(2) is None
    expected = class_balanced_weights([40, 5, 1], beta=0.99).float()
    for epoch in (3, 10):
        weights = module.class_weights(epoch)
        assert weights is not None
        torch.testing.assert_close(weights, expected)
    with pytest.raises(ValueError):
        LDAMDRWClassification(load_config(None, [*TINY, "clsbaseline.drw_epoch=-1"]), _classes())


def test_classifier_dropout_reaches_the_model() -> None:
    module = method_class("cls-ce")(load_config(None, [*TINY, "model.classifier_dropout=0.5"]), _classes())
    assert isinstance(module.model.dropout, torch.nn.Dropout) and module.model.dropout.p == 0.5
