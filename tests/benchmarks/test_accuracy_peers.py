"""The peer pipelines of the accuracy comparison, on tiny synthetic folders (one thread, a few seconds each)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from PIL import Image

# `pytest` does not put the repository on the path; without it, `benchmarks` would resolve to this folder
# (tests/benchmarks, as a namespace package) instead of the repository's benchmarks/. run_all.py does the same.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy.peers import PeerOutput, pretrain_simclr_peer, train_cls_peer, train_seg_peer  # noqa: E402

SIZE = 32
SegData = tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]
"""(train pairs, test pairs) of (JPEG image, PNG label)."""
ClsData = tuple[list[tuple[Path, int]], list[tuple[Path, int]]]
"""(train, test) lists of (JPEG image, class)."""


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_seg_pairs(root: Path, count: int, seed: int) -> list[tuple[Path, Path]]:
    """Dark class 0 left of a random column, bright class 2 right of it, 5% of the labels 255; RGB JPEG images."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    pairs = []
    for i in range(count):
        label = np.full((SIZE, SIZE), 2, dtype=np.uint8)
        label[:, : rng.integers(8, SIZE - 8)] = 0
        gray = np.where(label == 0, 40, 200) + rng.integers(-15, 16, size=label.shape)
        label[rng.random(label.shape) < 0.05] = 255
        image_path, label_path = root / f"{i:03d}.jpg", root / f"{i:03d}.png"
        Image.fromarray(np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)).save(image_path, quality=95)
        Image.fromarray(label, mode="L").save(label_path)
        pairs.append((image_path, label_path))
    return pairs


def write_cls_images(root: Path, per_class: int, seed: int) -> list[tuple[Path, int]]:
    """Noisy red (class 0) and noisy blue (class 1) JPEG images: each pixel's red or blue value is the largest."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    samples = []
    for cls, channel in enumerate((0, 2)):
        for i in range(per_class):
            pixels = rng.integers(0, 128, size=(SIZE, SIZE, 3))
            pixels[..., channel] += 128
            path = root / f"{cls}_{i:02d}.jpg"
            Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)
            samples.append((path, cls))
    return samples


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory: pytest.TempPathFactory) -> SegData:
    root = tmp_path_factory.mktemp("seg")
    return write_seg_pairs(root / "train", 12, seed=0), write_seg_pairs(root / "test", 4, seed=1)


@pytest.fixture(scope="module")
def cls_data(tmp_path_factory: pytest.TempPathFactory) -> ClsData:
    root = tmp_path_factory.mktemp("cls")
    return write_cls_images(root / "train", 16, seed=0), write_cls_images(root / "test", 2, seed=1)


def seg_run(data: SegData, **kwargs: Any) -> PeerOutput:
    train, test = data
    return train_seg_peer(train, [image for image, _ in test], image_size=SIZE, **kwargs)


def simclr_run(data: SegData, **kwargs: Any) -> tuple[dict[str, torch.Tensor], float]:
    return pretrain_simclr_peer([image for image, _ in data[0]], seed=3, epochs=1, image_size=SIZE, **kwargs)


def cls_run(data: ClsData, **kwargs: Any) -> PeerOutput:
    train, test = data
    return train_cls_peer(train, [image for image, _ in test], num_classes=2, image_size=SIZE, **kwargs)


@pytest.fixture(scope="module")
def simclr_state(seg_data: SegData) -> dict[str, torch.Tensor]:
    state, wall = simclr_run(seg_data, batch_size=4)
    assert wall > 0
    return state


def test_seg_peer_output(seg_data: SegData) -> None:
    out = seg_run(seg_data, seed=0, epochs=1)
    assert out.predictions.shape == (4, SIZE, SIZE)
    assert out.predictions.dtype == np.uint8
    assert out.predictions.max() <= 3
    assert out.images_seen == {"labeled": 12, "unlabeled": 0}
    assert out.wall_s > 0


def test_seg_peer_reproducible(seg_data: SegData) -> None:
    first, second = (seg_run(seg_data, seed=5, epochs=1, batch_size=4) for _ in range(2))
    np.testing.assert_array_equal(first.predictions, second.predictions)


def test_seg_peer_learns_toy_problem(seg_data: SegData) -> None:
    # 10 epochs of 3 steps: ≥ 0.94 pixel accuracy for every seed 0-4 already after 6 epochs
    out = seg_run(seg_data, seed=0, epochs=10, batch_size=4)
    truth = np.stack([np.asarray(Image.open(label)) for _, label in seg_data[1]])
    labeled = truth != 255
    assert (out.predictions[labeled] == truth[labeled]).mean() > 0.9


def test_simclr_peer_changes_encoder_and_loads(seg_data: SegData, simclr_state: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(3)
    fresh = smp.DeepLabV3Plus("resnet18", encoder_weights=None, in_channels=1, classes=4).encoder.state_dict()
    assert simclr_state.keys() == fresh.keys()
    assert simclr_state["conv1.weight"].shape == fresh["conv1.weight"].shape == (64, 1, 7, 7)
    assert not torch.equal(simclr_state["conv1.weight"], fresh["conv1.weight"])
    out = seg_run(seg_data, seed=0, epochs=1, encoder_state=simclr_state)
    assert out.predictions.shape == (4, SIZE, SIZE)


def test_simclr_peer_reproducible(seg_data: SegData, simclr_state: dict[str, torch.Tensor]) -> None:
    again, _ = simclr_run(seg_data, batch_size=4)
    for name, tensor in simclr_state.items():
        assert torch.equal(tensor, again[name]), name


def test_simclr_peer_needs_a_batch(seg_data: SegData) -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        simclr_run(seg_data, batch_size=64)


def test_cls_peer_output_and_reproducible(cls_data: ClsData) -> None:
    first, second = (cls_run(cls_data, seed=0, epochs=1) for _ in range(2))
    assert first.predictions.shape == (4,)
    assert first.predictions.dtype == np.int64
    assert ((first.predictions >= 0) & (first.predictions < 2)).all()
    assert first.images_seen == {"labeled": 32, "unlabeled": 0}
    np.testing.assert_array_equal(first.predictions, second.predictions)


def test_cls_peer_learns_toy_problem(cls_data: ClsData) -> None:
    # Enough steps (8 epochs of 8) for eval-mode BatchNorm statistics to settle: with 2-4 steps per epoch the
    # running statistics lag the weights and eval predictions collapse to one class for some seeds.
    out = cls_run(cls_data, seed=0, epochs=8, batch_size=4)
    np.testing.assert_array_equal(out.predictions, [label for _, label in cls_data[1]])
