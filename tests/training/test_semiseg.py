"""Method B-seg training logic: stages, pseudo labels, and that pseudo labels never reach the cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from marsvision.data.classes import IGNORE_INDEX, TERRAIN4
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.semiseg import SemiSegModule, pseudo_labels, stage_of_epoch


def test_stage_boundaries_skip_empty_stages():
    assert [stage_of_epoch(e, [2, 1, 2]) for e in range(5)] == [
        "contrastive",
        "contrastive",
        "joint",
        "pseudo",
        "pseudo",
    ]
    assert [stage_of_epoch(e, [0, 2, 1]) for e in range(3)] == ["joint", "joint", "pseudo"]
    assert [stage_of_epoch(e, [1, 0, 1]) for e in range(2)] == ["contrastive", "pseudo"]


def test_pseudo_labels_fill_only_confident_unlabeled_locations():
    # Two locations per image: probabilities (0.95, 0.05) and (0.6, 0.4) for class 0/1.
    logits = torch.log(torch.tensor([[[[0.95, 0.6]], [[0.05, 0.4]]]]))  # (1, 2, 1, 2)
    labels = torch.tensor([[[IGNORE_INDEX, IGNORE_INDEX]]])
    filled, stats = pseudo_labels(logits, labels, threshold=0.9)
    assert filled.tolist() == [[[0, IGNORE_INDEX]]]
    assert stats["pseudo_fraction"] == pytest.approx(0.5)
    assert torch.isnan(stats["pseudo_accuracy"])  # no labeled location to check against
    labels = torch.tensor([[[1, IGNORE_INDEX]]])  # a labeled location the rule would get wrong if hidden
    filled, stats = pseudo_labels(logits, labels, threshold=0.5)
    assert filled.tolist() == [[[1, 0]]], "ground truth is never overwritten"
    assert stats["pseudo_accuracy"] == 0.0 and stats["pseudo_fraction"] == 1.0


def tiny_module(threshold: float) -> SemiSegModule:
    config = load_config(
        "demo-semiseg",
        ["data.image_size=32", f"semiseg.pseudo_label_threshold={threshold}", "semiseg.embedding_dim=16"],
    )
    torch.manual_seed(0)
    return SemiSegModule(config, ClassInfo(list(TERRAIN4)))


def batch_with_gaps() -> dict:
    torch.manual_seed(1)
    images = torch.rand(2, 1, 32, 32)
    labels = torch.randint(0, 4, (2, 32, 32))
    labels[:, :, 16:] = IGNORE_INDEX  # half of every image unlabeled
    return {"labeled": {"image": images, "label": labels}, "unlabeled": {"image": torch.rand(2, 1, 32, 32)}}


def test_pseudo_labels_never_reach_the_cross_entropy():
    module = tiny_module(threshold=0.0)  # every unlabeled location gets a pseudo label
    batch = batch_with_gaps()
    torch.manual_seed(2)  # the decoder has dropout: replay the same masks for the reference forward pass
    parts = module.compute_losses(batch, "pseudo")
    assert parts["pseudo_fraction"] == 1.0
    torch.manual_seed(2)
    logits = module.model(batch["labeled"]["image"])["logits"]
    labels = batch["labeled"]["label"]
    ground_truth_ce = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    filled, _ = pseudo_labels(logits, labels, 0.0)
    leaked_ce = F.cross_entropy(logits, filled, ignore_index=IGNORE_INDEX)
    assert not torch.isclose(ground_truth_ce, leaked_ce), "test cannot tell the two apart"
    assert parts["ce"].item() == pytest.approx(ground_truth_ce.item(), rel=1e-6)
    expected = ground_truth_ce + module.config.semiseg.contrastive_weight * parts["contrastive"]
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_stage_one_trains_the_contrastive_loss_alone_and_fills_the_bank():
    module = tiny_module(threshold=0.9)
    batch = batch_with_gaps()
    assert not module.contrastive.bank.valid().any()
    first = module.compute_losses(batch, "contrastive")
    assert "ce" not in first and first["loss"].item() == 0.0  # empty bank: no prototype to contrast with yet
    present = torch.unique(batch["labeled"]["label"])
    present = present[present != IGNORE_INDEX]
    assert module.contrastive.bank.valid().nonzero().flatten().tolist() == present.tolist()
    second = module.compute_losses(batch, "contrastive")
    assert second["loss"].item() > 0.0 and second["loss"].requires_grad
