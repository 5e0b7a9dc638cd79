"""Method B-cls training logic: data streams per method, BatchNorm statistics, the MixUp/CutMix baselines."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from marsvision.training.classification import CutMixClassification, MixUpClassification
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.registry import method_class


def test_streams_per_method():
    assert method_class("wang-cls").streams == ("labeled", "balanced", "unlabeled-views")
    assert method_class("cls-ce").streams == ("labeled",)
    assert method_class("cls-supcon").streams == ("labeled", "balanced")
    assert method_class("cls-pseudo-label").streams == ("labeled", "unlabeled-views")
    with pytest.raises(ValueError, match=r"unknown method 'dance'"):
        method_class("dance")


def _tiny(method_class_: type, classes: int = 4) -> MixUpClassification:
    config = load_config(None, ["model.encoder=r18_0.25x_sk0", "data.channels=3", "model.projection_dim=8"])
    return method_class_(config, ClassInfo([f"c{i}" for i in range(classes)]))


def test_mixup_is_a_convex_combination_and_its_loss_mixes_the_two_labels():
    module = _tiny(MixUpClassification)
    images, targets = torch.rand(6, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.manual_seed(0)
    mixed, soft = module.mixer()(images, targets)
    lam = float(soft[0, targets[0]]) if targets[0] != targets[-1] else None
    partner = images.roll(1, 0)  # torchvision mixes each image with the previous one
    assert lam is not None and 0.0 <= lam <= 1.0
    assert torch.allclose(mixed, lam * images + (1 - lam) * partner, atol=1e-6)
    torch.manual_seed(0)
    loss = module.supervised_loss(images, targets)
    logits = module(mixed)
    expected = lam * F.cross_entropy(logits, targets) + (1 - lam) * F.cross_entropy(logits, targets.roll(1, 0))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_cutmix_weight_equals_the_share_of_kept_pixels():
    module = _tiny(CutMixClassification)
    images = torch.zeros(4, 3, 16, 16) + torch.arange(4.0).view(4, 1, 1, 1) + 1  # image i is filled with i + 1
    targets = torch.tensor([0, 1, 2, 3])
    torch.manual_seed(3)
    mixed, soft = module.mixer()(images, targets)
    kept = (mixed == images).float().mean(dim=(1, 2, 3))  # share of own pixels per image
    for i in range(4):
        assert kept[i].item() == pytest.approx(soft[i, targets[i]].item())
        assert soft[i].sum().item() == pytest.approx(1.0)


def test_only_the_labeled_images_move_the_encoders_batchnorm_running_statistics(monkeypatch: pytest.MonkeyPatch):
    torch.manual_seed(0)
    module = _tiny(method_class("wang-cls"))
    module.train()
    labeled = torch.rand(4, 3, 16, 16)
    shifted = lambda n: 5 * torch.rand(n, 3, 16, 16) + 3  # noqa: E731 -- strong views far from the labeled images
    batch = {
        "labeled": {"image": labeled, "label": torch.tensor([0, 1, 2, 3])},
        "balanced": {"image": shifted(8), "label": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])},
        "unlabeled-views": {"views": [shifted(4), shifted(4)]},
    }
    reference = copy.deepcopy(module.model.encoder)
    reference(labeled)  # what the labeled pass alone does to the running averages
    monkeypatch.setattr(module, "log_loss_parts", lambda parts, batch_size: parts["loss"])  # logging needs a Trainer
    module.training_step(batch, 0)
    layers = [(ours, theirs) for ours, theirs in zip(module.model.encoder.modules(), reference.modules(), strict=True)]
    batchnorms = [(ours, theirs) for ours, theirs in layers if isinstance(ours, _BatchNorm)]
    assert batchnorms
    for ours, theirs in batchnorms:
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
        assert ours.momentum == theirs.momentum


def _wang_batch() -> dict:
    return {
        "labeled": {"image": torch.rand(4, 3, 16, 16), "label": torch.tensor([0, 1, 2, 3])},
        "balanced": {"image": torch.rand(8, 3, 16, 16), "label": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])},
        "unlabeled-views": {"views": [torch.rand(5, 3, 16, 16), torch.rand(5, 3, 16, 16)]},
    }


def _collapse_measure(z: torch.Tensor) -> float:
    """SimSiam's measure by hand in float64: the mean over dimensions of the std over the batch of z / ‖z‖."""
    unit = z.double() / z.double().norm(dim=1, keepdim=True)
    mean = unit.mean(dim=0)
    return float(((unit - mean) ** 2).sum(dim=0).div(len(z) - 1).sqrt().mean())


def test_method_b_logs_how_far_its_unlabeled_embeddings_and_features_are_from_collapse():
    torch.manual_seed(0)
    module = _tiny(method_class("wang-cls")).eval()
    batch = _wang_batch()
    with torch.no_grad():
        parts = module.extra_parts(batch)
        features = module.model.encoder(batch["unlabeled-views"]["views"][0])
        embedding = module.model.unsupervised_head(features)
    assert parts["similarity_embedding_std"].item() == pytest.approx(_collapse_measure(embedding), rel=1e-5)
    assert parts["unlabeled_feature_std"].item() == pytest.approx(_collapse_measure(features), rel=1e-5)
    assert parts["similarity_embedding_std"].item() > 0.0

    last = [layer for layer in module.model.unsupervised_head.modules() if isinstance(layer, torch.nn.Linear)][-1]
    with torch.no_grad():  # H_u collapsed: every image maps to its bias
        last.weight.zero_()
        last.bias.fill_(0.5)
        collapsed = module.extra_parts(batch)
    assert collapsed["similarity"].item() == pytest.approx(-1.0, abs=1e-6)
    assert collapsed["similarity_embedding_std"].item() == pytest.approx(0.0, abs=1e-6)
    assert collapsed["unlabeled_feature_std"].item() == pytest.approx(parts["unlabeled_feature_std"].item())
