"""LESS: its three stages train the labeler, then the network with the pixel contrast, then the network alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from epoch_states import changed, record_epochs
from marsvision.data.classes import IGNORE_INDEX
from marsvision.training import api
from marsvision.training.config import load_config
from marsvision.training.data import ClassInfo
from marsvision.training.less import LESSCrossImage

TINY = ["model.head=deeplabv3plus", "model.encoder=resnet18", "less.resize=8"]


def test_pseudo_labels_are_the_frozen_labelers_and_padding_has_none() -> None:
    module = LESSCrossImage(load_config(None, TINY), ClassInfo(["a", "b", "c"]))
    images = torch.rand(2, 1, 32, 32)
    valid = torch.ones(2, 32, 32, dtype=torch.bool)
    valid[:, :, 24:] = False
    first, second = module.pseudo_labels(images, valid), module.pseudo_labels(images, valid)
    assert torch.equal(first, second) and not module.labeler.training
    assert (first[:, :, 24:] == IGNORE_INDEX).all() and (first[:, :, :24] < 3).all()
    with pytest.raises(ValueError, match="deeplabv3plus"):
        LESSCrossImage(load_config(None, ["model.encoder=r18_0.25x_sk0"]), ClassInfo(["a", "b"]))


@pytest.mark.usefixtures("one_thread")
def test_each_stage_trains_its_own_part(paired_folder: Path, tmp_path: Path, monkeypatch) -> None:
    recorder = record_epochs(monkeypatch)
    overrides = [
        *TINY, "method=seg-less-within", f"data.root={paired_folder}", f"runs_root={tmp_path}",
        "data.dataset=paired-folder", "data.image_size=32", "data.batch_size=4", "data.unlabeled_batch_size=2",
        "data.test_holdout=2", "data.val_fraction=0", "data.label_count=4", "optim.name=sgd", "optim.lr=0.01",
        "optim.schedule=constant", "trainer.early_stopping_patience=null", "trainer.progress_bar=false",
        "trainer.device=cpu", "trainer.limit_train_batches=1", "less.stage_epochs=[1,1,1]",
    ]  # fmt: skip
    api.train(load_config(None, overrides))
    labeler, contrastive, finetune = recorder.states
    assert changed(recorder.initial, labeler, "labeler.") and not changed(recorder.initial, labeler, "model.")
    assert changed(labeler, contrastive, "labeler.") == set() == changed(contrastive, finetune, "labeler.")
    assert changed(labeler, contrastive, "model.encoder.") and changed(contrastive, finetune, "model.encoder.")
    assert changed(labeler, contrastive, "projection.")
    assert changed(contrastive, finetune, "projection.") == set()
    assert changed(labeler, contrastive, "model.seg_head.") == set()  # the contrastive stage has no logits
