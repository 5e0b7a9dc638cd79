"""Batched views end to end: the loader yields decoded images, the module augments each stream, resume is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_methods import assert_resume_replays, method_config, train_records

from marsvision.data.synth import synthesize_msl_v1
from marsvision.training.api import train
from marsvision.training.config import load_config
from marsvision.training.data import build_run_data
from marsvision.training.stream_views import StreamViews, simclr_view, strong_view

BATCHED = ["simclr.batched_views=true", "classification.batched_views=true"]


@pytest.fixture(scope="module")
def msl_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("msl") / "msl-v1"
    synthesize_msl_v1(root, num_images=48, size=32, seed=0)
    return root


def test_views_follow_the_config():
    config = load_config(
        None,
        [
            "data.image_size=48",
            "data.channels=3",
            "simclr.crop_size=32",
            "simclr.crop_scale_min=0.4",
            "simclr.grayscale_probability=0.1",
            "classification.strong_rotation_degrees=10",
            "classification.strong_blur_probability=0.25",
        ],
    )
    simclr, strong = simclr_view(config), strong_view(config)
    assert (simclr.size, simclr.crop_scale, simclr.grayscale_probability) == (32, (0.4, 1.0), 0.1)
    assert (simclr.vertical_flip_probability, simclr.rotation_degrees) == (0.0, 0.0)
    assert (strong.size, strong.rotation_degrees, strong.blur_probability) == (48, 10.0, 0.25)
    assert strong.vertical_flip_probability == 0.5 and strong.crop_scale == (0.3, 1.0)


def test_each_stream_gets_what_its_item_function_would_give():
    config = load_config(None, ["data.image_size=16", "data.channels=3", "classification.labeled_augmentation=strong"])
    images = {stream: torch.rand(4, 3, 16, 16) for stream in ("labeled", "balanced", "unlabeled", "unlabeled-views")}
    batch = {stream: {"image": image, "id": ["a"] * 4} for stream, image in images.items()}
    batch["unlabeled-weak-strong"] = {"image": images["unlabeled"]}
    out = StreamViews(config, "classification")(batch, torch.Generator().manual_seed(0))
    for stream in ("labeled", "balanced", "unlabeled"):
        assert out[stream]["image"].shape == (4, 3, 16, 16) and out[stream]["id"] == ["a"] * 4
        assert not torch.equal(out[stream]["image"], images[stream]), stream
    weak = out["unlabeled"]["image"]
    assert all(torch.equal(w, i) or torch.equal(w, i.flip(-1)) for w, i in zip(weak, images["unlabeled"], strict=True))
    for stream in ("unlabeled-views", "unlabeled-weak-strong"):
        assert len(out[stream]["views"]) == 2 and all(v.shape == (4, 3, 16, 16) for v in out[stream]["views"])
    assert torch.equal(out["unlabeled-views"]["image"], images["unlabeled-views"]), "the decoded image stays"
    again = StreamViews(config, "classification")(batch, torch.Generator().manual_seed(0))
    assert torch.equal(again["balanced"]["image"], out["balanced"]["image"])


@pytest.mark.usefixtures("one_thread")
def test_the_loader_yields_decoded_images_when_the_module_makes_the_views(paired_folder: Path, msl_root: Path):
    roots = {"segmentation": paired_folder, "classification": msl_root}
    for method, stream, section in (
        ("simclr", "simclr-views", "simclr"),
        ("wang-cls", "unlabeled-views", "classification"),
    ):
        for batched in (False, True):
            config = method_config(method, roots, Path("unused"), 1, [f"{section}.batched_views={batched}"])
            task = "pretrain" if method == "simclr" else "classification"
            streams = ("simclr-views",) if method == "simclr" else ("labeled", "balanced", "unlabeled-views")
            batch = next(iter(build_run_data(config, task, streams).train))[0]
            assert ("views" in batch[stream]) is not batched, (method, batched)
            assert batch[stream]["image"].shape[-1] == config.data.image_size


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["simclr", "wang-cls", "cls-fixmatch"])
def test_batched_views_train_and_resume_exactly(
    method: str, paired_folder: Path, msl_root: Path, tmp_path: Path, monkeypatch
):
    roots = {"segmentation": paired_folder, "classification": msl_root}
    full = train(method_config(method, roots, tmp_path / "full", 2, BATCHED))
    records = train_records(full)
    assert [r["epoch"] for r in records] == [0, 1] and all(r["loss"] == r["loss"] for r in records)
    per_image = train_records(train(method_config(method, roots, tmp_path / "per-image", 2)))
    assert [r["loss"] for r in per_image] != [r["loss"] for r in records], "the batched views are used"
    assert_resume_replays(method, roots, tmp_path, monkeypatch, records, BATCHED)
