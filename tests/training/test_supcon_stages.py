"""SupCon as paper 002 ran it: SupCon alone on two strong views, then a classifier on a frozen or trained backbone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from marsvision.losses.supcon import supcon_loss
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.reproducibility import mixed_seed, step_generator
from marsvision.training.supcon_stages import SUPCON_VIEW_DRAWS, SupConAllLayers, SupConLinearClassifier


def module(kind: type[SupConLinearClassifier]) -> SupConLinearClassifier:
    config = load_config(
        "cls-supcon-linear",
        ["data.image_size=32", "model.encoder=r18_0.25x_sk0", "model.projection_dim=8", "model.weights=null"],
    )
    torch.manual_seed(0)
    return kind(config, ClassInfo([f"c{i}" for i in range(4)])).train()


def test_stage_one_is_supcon_on_two_strong_views_of_each_random_image():
    supcon = module(SupConLinearClassifier)
    images, targets = torch.rand(6, 3, 32, 32), torch.tensor([0, 0, 1, 1, 2, 3])
    torch.manual_seed(5)
    parts = supcon.supcon_parts(images, targets)
    generator = step_generator(mixed_seed(supcon.config.seed, SUPCON_VIEW_DRAWS), 0, 0)
    views = [supcon.views(images, generator) for _ in range(2)]
    assert not torch.equal(views[0], views[1]), "two different views"
    torch.manual_seed(5)
    z = torch.stack([F.normalize(supcon.model.embed_supervised(v), dim=1) for v in views], dim=1)
    expected = supcon_loss(z, targets, temperature=0.1)
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-5) and parts["supcon"] is parts["loss"]


@pytest.mark.parametrize(("kind", "backbone_learns"), [(SupConLinearClassifier, False), (SupConAllLayers, True)])
def test_stage_two_trains_a_linear_classifier_or_every_layer(kind: type[SupConLinearClassifier], backbone_learns: bool):
    supcon = module(kind)
    loss = F.cross_entropy(supcon.classifier_logits(torch.rand(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    encoder_gradients = [p.grad for p in supcon.model.encoder.parameters()]
    assert all(g is not None for g in encoder_gradients) == backbone_learns
    assert all(p.grad is not None for p in supcon.model.classifier.parameters())
    assert {id(p) for p in supcon.stage_two_parameters()} >= {id(p) for p in supcon.model.classifier.parameters()}
