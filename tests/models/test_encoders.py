import pytest
import torch

from marsvision.models.counting import parameter_counts
from marsvision.models.encoders import create_encoder, list_encoders
from marsvision.models.simclrv2_resnet import SimCLRv2ResNet

# Entries above this size are checked on the meta device (shapes only), SimCLRv2 ones also through a real
# 1/8-width twin of the same depth and SK setting: the test run must stay short on two shared CPU cores.
# The torchvision ResNets share one wrapper, exercised for real by resnet18.
REAL_RUN_LIMIT = 15_000_000


def _meta_size(name: str) -> int:
    with torch.device("meta"):
        return parameter_counts(create_encoder(name))["trainable_params"]


UNPADDED_MAP_SIZES = {"alexnet": (224, 6)}
"""Encoders whose map is not exactly H/32 (AlexNet's unpadded pooling): test input side → map side."""


def _check_forward_backward(
    encoder: torch.nn.Module, in_channels: int, size: int = 32, map_size: int | None = None
) -> None:
    x = torch.rand(2, in_channels, size, size)
    features = encoder.forward_features(x)
    side = size // 32 if map_size is None else map_size
    assert features.shape == (2, encoder.feature_channels, side, side)
    assert torch.isfinite(features).all()
    with torch.no_grad():
        pooled = encoder(x)
    torch.testing.assert_close(pooled, features.detach().mean(dim=(-2, -1)))
    features.square().mean().backward()
    no_grad = [n for n, p in encoder.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list_encoders())
def test_every_registry_entry(name: str) -> None:
    torch.manual_seed(0)
    if _meta_size(name) <= REAL_RUN_LIMIT:
        _check_forward_backward(create_encoder(name), 3, *UNPADDED_MAP_SIZES.get(name, (32, None)))
        return
    with torch.device("meta"):
        encoder = create_encoder(name)
        out = encoder(torch.empty(2, 3, 64, 64))
    assert out.shape == (2, encoder.feature_channels)


@pytest.mark.parametrize("sk", [False, True])
@pytest.mark.parametrize("depth", [50, 101, 152])
def test_simclrv2_architectures_at_tiny_width(depth: int, sk: bool) -> None:
    """The real forward/backward of every SimCLRv2 depth × SK setting whose 1× entry is checked on meta."""
    torch.manual_seed(0)
    _check_forward_backward(SimCLRv2ResNet(depth, 0.125, sk), 3)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "r18_0.25x_sk1", "alexnet", "vgg16", "regnet_x_1_6gf"])
def test_one_input_channel(name: str) -> None:
    torch.manual_seed(0)
    if name in ("alexnet", "vgg16", "regnet_x_1_6gf"):  # same replacement code path; shapes suffice (CPU budget)
        with torch.device("meta"):
            encoder = create_encoder(name, in_channels=1)
            assert encoder(torch.empty(2, 1, 64, 64)).shape == (2, encoder.feature_channels)
    else:
        encoder = create_encoder(name, in_channels=1)
        _check_forward_backward(encoder, 1)
    first = next(m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1


@pytest.mark.parametrize(
    ("name", "channels"),
    [("r18_0.25x_sk0", 128), ("r50_0.25x_sk1", 512), ("r101_2x_sk0", 4096), ("r152_3x_sk1", 6144)],
)
def test_simclrv2_names_are_parsed_generally(name: str, channels: int) -> None:
    with torch.device("meta"):
        encoder = create_encoder(name)
    assert isinstance(encoder, SimCLRv2ResNet)
    assert encoder.feature_channels == channels
    assert encoder.config.name == name


def test_torchvision_wrappers_keep_torchvision_keys() -> None:
    import torchvision

    with torch.device("meta"):
        ours = set(create_encoder("resnet50").state_dict())
        theirs = set(torchvision.models.resnet50(weights=None).state_dict())
    assert theirs - ours == {"fc.weight", "fc.bias"}
    assert ours <= theirs


@pytest.mark.parametrize("name", ["resnet_50", "r50_2x", "r50_2x_sk2", ""])
def test_unknown_name_lists_valid_names(name: str) -> None:
    with pytest.raises(ValueError, match=r"valid names: .*r50_2x_sk1.*resnet50.*regnet_x_1_6gf"):
        create_encoder(name)


@pytest.mark.parametrize(("name", "problem"), [("r7_1x_sk0", "depth"), ("r50_0x_sk0", "width")])
def test_bad_simclrv2_names_say_why(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        create_encoder(name)


def test_unexpected_kwargs_raise() -> None:
    with pytest.raises(ValueError, match="unexpected"):
        create_encoder("resnet18", pretrained=True)
