"""The networks a config builds: paper 000's atrous head on the encoder or on a middle layer of the pretrained g."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from marsvision.models.encoders import create_encoder
from marsvision.models.heads import ProjectionHead
from marsvision.models.weights import export_encoder
from marsvision.torchfiles import safe_torch_load
from marsvision.training.config import load_config
from marsvision.training.factory import build_segmentation_model

ENCODER = "r18_0.25x_sk0"


def pretrained_files(tmp_path: Path) -> tuple[Path, Path, ProjectionHead]:
    """An exported encoder with its g, and the same g inside a Lightning-style checkpoint."""
    torch.manual_seed(0)
    encoder = create_encoder(ENCODER, in_channels=1)
    head = ProjectionHead(encoder.feature_channels, 8, num_layers=3)
    exported = export_encoder(encoder, ENCODER, tmp_path / "encoder.pt", projection_head=head)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"projection_head.{k}": v for k, v in head.state_dict().items()})
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": state}, checkpoint)
    return exported, checkpoint, head


def config_for(weights: Path, layer: int):
    return load_config(
        "finetune-ai4mars",
        [
            f"model.encoder={ENCODER}",
            f"model.weights={weights}",
            "model.projection_dim=8",
            "model.projection_layers=3",
            f"model.projection_layer={layer}",
        ],
    )


@pytest.mark.parametrize("source", ["exported", "checkpoint"])
def test_the_head_sits_on_a_middle_layer_of_the_pretrained_g(tmp_path: Path, source: str):
    exported, checkpoint, head = pretrained_files(tmp_path)
    model = build_segmentation_model(config_for(exported if source == "exported" else checkpoint, 1), 6)
    assert model.projection_head is not None and model.projection_layer == 1
    for key, value in head.state_dict().items():
        assert torch.equal(model.projection_head.state_dict()[key], value), key
    assert model(torch.rand(2, 1, 64, 64))["logits"].shape == (2, 6, 64, 64)
    assert "projection_head" in safe_torch_load(exported), "a pretraining run's encoder.pt keeps g"


def test_the_default_head_sits_on_the_encoder_and_a_file_without_g_is_refused(tmp_path: Path):
    exported, _, _ = pretrained_files(tmp_path)
    assert build_segmentation_model(config_for(exported, 0), 6).projection_head is None
    bare = export_encoder(create_encoder(ENCODER, in_channels=1), ENCODER, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match=r"bare\.pt: no projection head"):
        build_segmentation_model(config_for(bare, 2), 6)
