import pytest
import torch
import torch.nn.functional as F

from marsvision.models.counting import parameter_counts
from marsvision.models.simclrv2_resnet import (
    SelectiveKernelConv,
    SimCLRv2ResNet,
    parse_simclrv2_name,
    simclrv2_resnet,
    tf_same_max_pool,
)

# SimCLRv2's published encoder sizes (SPEC.md): trainable, and with BN running mean + variance.
SIZES = {
    "r50_1x_sk0": (23_508_032, 23_561_152),
    "r50_1x_sk1": (35_215_584, 35_277_408),
    "r50_2x_sk0": (93_907_072, 94_013_312),
    "r50_2x_sk1": (140_306_048, 140_428_864),
    "r152_3x_sk1": (794_704_160, 795_235_360),
}


@pytest.mark.parametrize(("name", "sizes"), SIZES.items())
def test_published_sizes(name: str, sizes: tuple[int, int]) -> None:
    with torch.device("meta"):  # no memory, no compute
        counts = parameter_counts(simclrv2_resnet(name))
    assert (counts["trainable_params"], counts["total_with_bn_stats"]) == sizes


def test_r50_1x_sk0_matches_torchvision_resnet50_layout_size() -> None:
    import torchvision

    with torch.device("meta"):
        ours = parameter_counts(simclrv2_resnet("r50_1x_sk0"))["trainable_params"]
        theirs = torchvision.models.resnet50(weights=None)
    assert ours == sum(p.numel() for n, p in theirs.named_parameters() if not n.startswith("fc."))


def test_parse_names() -> None:
    config = parse_simclrv2_name("r18_0.25x_sk1")
    assert (config.depth, config.width, config.sk, config.bottleneck) == (18, 0.25, True, False)
    assert parse_simclrv2_name("r152_3x_sk0").name == "r152_3x_sk0"
    with pytest.raises(ValueError, match="not a SimCLRv2"):
        parse_simclrv2_name("resnet50")


@pytest.mark.parametrize("sk", [False, True])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_shapes_and_contract(sk: bool, in_channels: int) -> None:
    model = SimCLRv2ResNet(50, 0.125, sk, in_channels=in_channels)
    x = torch.rand(2, in_channels, 64, 96)
    assert model.feature_channels == 256
    assert model.forward_features(x).shape == (2, 256, 2, 3)
    assert model(x).shape == (2, 256)


def test_state_dict_layout_is_the_documented_one() -> None:
    keys = set(SimCLRv2ResNet(50, 0.125, sk=True).state_dict())
    for key in (
        "stem.conv3.weight",
        "stem.bn3.running_var",
        "layer1.0.shortcut.conv.weight",
        "layer2.0.conv2.conv.weight",
        "layer2.0.conv2.fc1.weight",
        "layer2.0.conv2.fc_bn.weight",
        "layer2.0.conv2.fc2.weight",
        "layer4.2.conv3.weight",
        "layer4.2.bn3.bias",
    ):
        assert key in keys
    assert "layer1.1.shortcut.conv.weight" not in keys  # projection only in the first block of a group
    plain = set(SimCLRv2ResNet(50, 0.125, sk=False).state_dict())
    assert {"stem.conv1.weight", "layer3.0.conv2.weight", "layer3.0.bn2.weight"} <= plain
    assert "stem.conv2.weight" not in plain


def test_sk_sizes_follow_the_official_code() -> None:
    sk = SelectiveKernelConv(in_channels=64, filters=64, stride=1)
    assert sk.conv.weight.shape == (128, 64, 3, 3)  # both streams from one conv with 2× filters
    assert sk.fc1.weight.shape == (32, 64, 1, 1)  # max(64 / 16, 32) = 32
    assert sk.fc2.weight.shape == (128, 32, 1, 1)
    wide = SelectiveKernelConv(in_channels=1024, filters=1024, stride=2)
    assert wide.fc1.weight.shape == (64, 1024, 1, 1)  # 1024 / 16 = 64


def test_sk_mixing_is_a_convex_combination_of_the_streams() -> None:
    torch.manual_seed(0)
    sk = SelectiveKernelConv(in_channels=8, filters=8, stride=1).eval()
    with torch.no_grad():
        sk.conv.weight[8:] = sk.conv.weight[:8]  # identical streams: any softmax mix returns the stream
        sk.bn.running_mean.copy_(torch.randn(8).repeat(2))  # same BN statistics for both halves too
    x = torch.randn(2, 8, 5, 5)
    stream = F.relu(sk.bn(sk.conv(x)))[:, :8]
    torch.testing.assert_close(sk(x), stream)


def test_residual_branch_ends_with_zero_initialised_bn() -> None:
    model = SimCLRv2ResNet(50, 0.125, sk=True)
    assert all(not block.bn3.weight.detach().any() for block in model.layer1)
    assert bool((model.layer1[0].bn1.weight.detach() == 1.0).all())


def test_tf_same_max_pool_pads_at_the_end() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # TF SAME for 4 → 2 with a 3×3 window at stride 2 pads one row/column at the end only: windows start
    # at 0 and 2, so the maxima are x[2, 2], x[2, 3], x[3, 2], x[3, 3].
    assert tf_same_max_pool(x).flatten().tolist() == [10.0, 11.0, 14.0, 15.0]
    negative = -x - 1  # padding must never win
    assert tf_same_max_pool(negative).flatten().tolist() == [-1.0, -3.0, -9.0, -11.0]


def test_resnet_d_shortcut_pool_at_stride_1_excludes_padding() -> None:
    from marsvision.models.simclrv2_resnet import ProjectionShortcut

    shortcut = ProjectionShortcut(1, 1, stride=1, resnet_d=True).eval()
    with torch.no_grad():
        shortcut.conv.weight.fill_(1.0)
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    out = shortcut(x) * (1 + 1e-5) ** 0.5  # undo BN's 1/sqrt(1 + eps) in eval mode
    expected = torch.tensor([[2.0, 3.0, 3.5], [5.0, 6.0, 6.5], [6.5, 7.5, 8.0]])
    torch.testing.assert_close(out[0, 0], expected)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="depth"):
        SimCLRv2ResNet(depth=42)
    with pytest.raises(ValueError, match="width"):
        SimCLRv2ResNet(width=0)
    with pytest.raises(ValueError, match="in_channels"):
        SimCLRv2ResNet(in_channels=0)
