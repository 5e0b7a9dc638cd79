import torch
from torch import nn

from marsvision.models.counting import model_info, parameter_counts


def test_paper_model_size() -> None:
    """Paper 000: r50_2x_sk1 + atrous head, 6 classes: 171,046,784 trainable, 171,172,160 as Keras counts."""
    info = model_info("r50_2x_sk1", num_classes=6, head="paper")
    assert info["trainable_params"] == 171_046_784
    assert info["bn_running_stats"] == 125_376
    assert info["total_with_bn_stats"] == 171_172_160
    assert info["feature_channels"] == 4096
    assert info["encoder_counts"] == {
        "trainable_params": 140_306_048,
        "bn_running_stats": 122_816,
        "total_with_bn_stats": 140_428_864,
    }


def test_relu_variant_has_the_same_size() -> None:
    assert model_info("r50_2x_sk1", 6, head="relu")["trainable_params"] == 171_046_784


def test_parameter_counts_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    model[2].bias.requires_grad_(False)  # frozen parameters are not trainable
    counts = parameter_counts(model)
    assert counts == {"trainable_params": 3 * 4 * 9 + 4 + 8 + 8, "bn_running_stats": 8, "total_with_bn_stats": 136}


def test_model_info_allocates_nothing() -> None:
    info = model_info("r152_3x_sk1", num_classes=6, in_channels=1)
    assert info["in_channels"] == 1
    assert isinstance(info["trainable_params"], int)
    assert torch.get_default_device().type == "cpu"  # the meta context did not leak
