import pickle
from pathlib import Path

import pytest
import torch
import torchvision

from marsvision.models.encoders import create_encoder
from marsvision.models.weights import export_encoder, load_encoder_weights


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(state, path)
    return path, state


def _assert_loaded(encoder: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_torchvision_state_dict(torchvision_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = torchvision_file
    encoder = create_encoder("resnet18")
    report = load_encoder_weights(encoder, path)
    assert report.kind == "torchvision"
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.dropped) == ["fc.bias", "fc.weight"]
    _assert_loaded(encoder, state)


def test_one_channel_encoder_sums_the_first_conv(torchvision_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = torchvision_file
    gray = create_encoder("resnet18", in_channels=1).eval()
    report = load_encoder_weights(gray, path, kind="torchvision")
    assert report.adapted == ["conv1.weight"]
    rgb = create_encoder("resnet18").eval()
    load_encoder_weights(rgb, path)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():  # a gray image replicated to RGB gives the same response
        torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_mocov2_checkpoint(tmp_path: Path, torchvision_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    _, state = torchvision_file
    body = {f"module.encoder_q.{k}": v for k, v in state.items() if not k.startswith("fc.")}
    body["module.encoder_q.fc.0.weight"] = torch.zeros(512, 512)  # MoCo v2's MLP head: dropped
    body["module.encoder_k.conv1.weight"] = torch.zeros(64, 3, 7, 7)  # key encoder: ignored
    path = tmp_path / "moco_v2_800ep.pth.tar"
    torch.save({"epoch": 800, "arch": "resnet18", "state_dict": body}, path)
    encoder = create_encoder("resnet18")
    report = load_encoder_weights(encoder, path)
    assert report.kind == "mocov2" and report.missing == [] and report.dropped == ["fc.0.weight"]
    _assert_loaded(encoder, state)


def test_marsvision_lightning_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_encoder("r18_0.25x_sk1")
    body = {f"encoder.{k}": v for k, v in source.state_dict().items()}
    body["projection_head.layers.0.linear.weight"] = torch.zeros(4, 4)
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "global_step": 100, "state_dict": body}, path)
    target = create_encoder("r18_0.25x_sk1")
    report = load_encoder_weights(target, path)
    assert report.kind == "marsvision" and report.missing == [] and report.unexpected == []
    _assert_loaded(target, source.state_dict())


def test_exported_encoder_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_encoder("r18_0.25x_sk0", in_channels=1)
    path = tmp_path / "encoder.pt"
    export_encoder(source, "r18_0.25x_sk0", path)
    target = create_encoder("r18_0.25x_sk0", in_channels=1)
    report = load_encoder_weights(target, path, kind="marsvision", strict=True)
    assert len(report.loaded) == len(source.state_dict())
    _assert_loaded(target, source.state_dict())


def test_nothing_matching_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"decoder.weight": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match=r"other\.pt.*no weights match"):
        load_encoder_weights(create_encoder("r18_0.25x_sk0"), path)


def test_shape_mismatch_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "small.pt"
    export_encoder(create_encoder("r18_0.25x_sk0"), "r18_0.25x_sk0", path)
    with pytest.raises(ValueError, match=r"small\.pt: shape mismatch"):
        load_encoder_weights(create_encoder("r18_0.5x_sk0"), path)
    partial = tmp_path / "partial.pt"
    state = create_encoder("r18_0.25x_sk0").state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, partial)
    report = load_encoder_weights(create_encoder("r18_0.25x_sk0"), partial)
    assert report.missing and all(k.startswith("layer4") for k in report.missing)
    with pytest.raises(ValueError, match="missing keys"):
        load_encoder_weights(create_encoder("r18_0.25x_sk0"), partial, strict=True)


def test_bad_kind_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        load_encoder_weights(create_encoder("r18_0.25x_sk0"), tmp_path / "x.pt", kind="imagenet")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"x\.pt"):
        load_encoder_weights(create_encoder("r18_0.25x_sk0"), tmp_path / "x.pt")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickle.pt"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "bad": Path("x")}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"[Ww]eights only"):
        load_encoder_weights(create_encoder("r18_0.25x_sk0"), path)
