"""Method B-seg training logic: stages, pseudo labels, and that pseudo labels never reach the cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from marsvision.data.classes import IGNORE_INDEX, TERRAIN4
from marsvision.data.synth import synthesize_paired_folder
from marsvision.training.config import ConfigError, load_config
from marsvision.training.data import ClassInfo, build_run_data
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
    labels = torch.tensor([[[IGNORE_INDEX, IGNORE_INDEX]]])
    filled, stats = pseudo_labels(logits, labels, threshold=0.5, valid=torch.tensor([[[True, False]]]))
    assert filled.tolist() == [[[0, IGNORE_INDEX]]], "padding gets no pseudo label"
    assert stats["pseudo_fraction"] == 1.0, "the share is of the image's own unlabeled locations"


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


def frozen_statistics(module: SemiSegModule) -> SemiSegModule:
    """BatchNorm running statistics that training steps leave unchanged, so eval-mode logits stay put."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.momentum = 0.0
    return module


def recorded_contrastive_labels(module: SemiSegModule) -> list[torch.Tensor]:
    """Every label map the contrastive loss (and so the memory bank) receives from now on."""
    calls: list[torch.Tensor] = []
    original = module.contrastive.forward

    def record(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        calls.append(labels.clone())
        return original(embeddings, labels)

    module.contrastive.forward = record  # type: ignore[method-assign]
    return calls


def test_pseudo_labels_come_from_an_eval_mode_forward_pass_and_skip_padding():
    module = frozen_statistics(tiny_module(threshold=0.0))  # every unlabeled location gets the arg-max
    batch = batch_with_gaps()
    valid = torch.ones(2, 32, 32, dtype=torch.bool)
    valid[:, :4] = False  # the augmentation padded the top rows of the unlabeled images
    batch["unlabeled"]["valid"] = valid
    labeled_valid = torch.ones(2, 32, 32, dtype=torch.bool)
    labeled_valid[:, :, 28:] = False  # and the right columns of the labeled ones (labeled 255, like unlabeled pixels)
    batch["labeled"]["valid"] = labeled_valid
    images, labels, unlabeled = batch["labeled"]["image"], batch["labeled"]["label"], batch["unlabeled"]["image"]
    module.model.train()
    with torch.no_grad():
        train_mode = module.model(images)["logits"]
        module.model.eval()
        eval_mode, eval_unlabeled = (module.model(x)["logits"] for x in (images, unlabeled))
    module.model.train()
    expected, _ = pseudo_labels(eval_mode, labels, 0.0)
    expected[~labeled_valid] = IGNORE_INDEX
    leaked, _ = pseudo_labels(train_mode, labels, 0.0)
    assert not torch.equal(expected, leaked), "the test cannot tell train-mode from eval-mode labels"
    hidden = torch.full_like(labels, IGNORE_INDEX)
    expected_unlabeled, _ = pseudo_labels(eval_unlabeled, hidden, 0.0)
    expected_unlabeled[~valid] = IGNORE_INDEX

    calls = recorded_contrastive_labels(module)
    module.compute_losses(batch, "pseudo")
    (received,) = calls
    assert torch.equal(received[:2], expected)
    assert torch.equal(received[2:], expected_unlabeled)
    assert module.model.training and all(layer.training for layer in module.model.modules()), "mode not restored"


def test_a_fully_labeled_pool_never_relabels_ground_truth():
    """With every image labeled, the unlabeled stream repeats labeled images (labels dropped): stage 3 leaves it
    alone, so each pixel with ground truth reaches the contrastive loss and the bank with its ground truth."""
    config = load_config(
        "demo-semiseg",
        [
            "data.image_size=32",
            "data.label_fraction=1.0",
            "semiseg.pseudo_label_threshold=0.0",
            "semiseg.embedding_dim=16",
        ],
    )
    torch.manual_seed(0)
    module = SemiSegModule(config, ClassInfo(list(TERRAIN4)))
    batch = batch_with_gaps()
    batch["unlabeled"] = {"image": batch["labeled"]["image"].clone()}  # the split policy's fallback
    labels = batch["labeled"]["label"]
    calls = recorded_contrastive_labels(module)
    module.compute_losses(batch, "pseudo")
    (received,) = calls
    assert received.shape == labels.shape, "images without their ground truth entered the contrastive loss"
    has_truth = labels != IGNORE_INDEX
    assert torch.equal(received[has_truth], labels[has_truth])
    assert (received[~has_truth] != IGNORE_INDEX).all(), "threshold 0: every unlabeled pixel gets a pseudo label"


def test_unlabeled_folders_with_a_fully_labeled_pool_are_refused():
    config = load_config("demo-semiseg", ["data.label_fraction=1.0", "data.unlabeled_root=/tmp/extra"])
    with pytest.raises(ConfigError, match=r"data\.label_fraction"):
        SemiSegModule(config, ClassInfo(list(TERRAIN4)))


def test_a_confidence_of_exactly_the_threshold_gets_a_pseudo_label():
    """The paper's rule is confidence ≥ 0.9: exactly 0.9 counts, one float step below does not."""
    just_below = math.log(1 / 9) + 1e-5
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(1 / 9), just_below]]]])  # (1, 2, 1, 2): class 0 wins both
    confidence = logits.softmax(dim=1).amax(dim=1).flatten()
    assert confidence[0] == torch.tensor(0.9) and 0.9 - 1e-5 < confidence[1] < confidence[0], "float32 set-up"
    filled, stats = pseudo_labels(logits, torch.full((1, 1, 2), IGNORE_INDEX), threshold=0.9)
    assert filled.tolist() == [[[0, IGNORE_INDEX]]]
    assert stats["pseudo_fraction"] == 0.5


def test_the_labeled_stream_of_a_segmentation_run_marks_the_padding(tmp_path):
    synthesize_paired_folder(tmp_path / "paired", num_images=12, size=64, seed=0)
    config = load_config(
        None,
        [
            "data.dataset=paired-folder",
            f"data.root={tmp_path / 'paired'}",
            "data.class_mode=terrain4",
            "data.test_holdout=2",
            "data.val_fraction=0",
            "data.image_size=48",
            "data.batch_size=10",
            f"data.cache_dir={tmp_path / 'cache'}",
        ],
    )
    batch = next(iter(build_run_data(config, "segmentation", ("labeled",)).train))[0]["labeled"]
    valid, labels = batch["valid"], batch["label"]
    assert valid.shape == labels.shape == (10, 48, 48)
    assert (~valid).any(), "scales below 1 pad some images (the test needs one)"
    assert bool((labels[~valid] == IGNORE_INDEX).all()) and bool((batch["image"][:, 0][~valid] == 0).all())
