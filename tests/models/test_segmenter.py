import pytest
import torch

from marsvision.models.encoders import create_encoder
from marsvision.models.heads import ProjectionHead
from marsvision.models.segmenter import AtrousSegmenter, ContrastiveSegmenter, SimCLRModel


@pytest.mark.parametrize("variant", ["paper", "relu"])
def test_segmenter_logits_at_input_size(variant: str) -> None:
    torch.manual_seed(0)
    model = AtrousSegmenter(create_encoder("r18_0.25x_sk1", in_channels=1), num_classes=6, head_variant=variant)
    out = model(torch.rand(2, 1, 64, 96))
    assert set(out) == {"logits"}
    assert out["logits"].shape == (2, 6, 64, 96)
    out["logits"].mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_task_head_on_a_middle_layer_of_g() -> None:
    torch.manual_seed(0)
    encoder = create_encoder("r18_0.25x_sk0")
    g = ProjectionHead(encoder.feature_channels, out_dim=16, hidden_dim=24)
    model = ContrastiveSegmenter(encoder, num_classes=4, projection_head=g, projection_layer=1)
    assert model.head.conv1x1.in_channels == 24
    assert model(torch.rand(2, 3, 64, 64))["logits"].shape == (2, 4, 64, 64)
    with pytest.raises(ValueError, match="layers"):
        AtrousSegmenter(encoder, 4, projection_head=g, projection_layer=4)
    with pytest.raises(ValueError, match="projection_head"):
        AtrousSegmenter(encoder, 4, projection_layer=1)


def test_bad_head_variant_raises() -> None:
    with pytest.raises(ValueError, match="head_variant"):
        AtrousSegmenter(create_encoder("r18_0.25x_sk0"), 6, head_variant="deeplab")  # type: ignore[arg-type]


def test_simclr_model_outputs() -> None:
    torch.manual_seed(0)
    encoder = create_encoder("r18_0.25x_sk0")
    model = SimCLRModel(encoder, ProjectionHead(encoder.feature_channels, out_dim=32))
    out = model(torch.rand(4, 3, 32, 32))
    assert set(out) == {"embedding", "features"}
    assert out["embedding"].shape == (4, 32)
    assert out["features"].shape == (4, encoder.feature_channels)
    with pytest.raises(ValueError, match="channels"):
        SimCLRModel(encoder, ProjectionHead(7))
