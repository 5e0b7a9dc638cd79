"""Every bundled recipe runs: one training step on generated data in its own dataset's format, then its test pass.

Each recipe keeps its method, dataset reader, split policy, head and options; what a CPU cannot afford shrinks:
images of 32 px, four per batch, one step, the smallest encoder of the recipe's family, one epoch per stage (the
stage a method spends most of its time in), no weights files (the smoke run is told that a frozen random backbone
is meant), and a sweep runs its first grid point. Sizes are the same for every recipe so that one failing names
itself, not the data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from marsvision.data.synth import synthesize_ai4mars, synthesize_msl_v1, synthesize_paired_folder
from marsvision.training.api import train
from marsvision.training.config import list_recipes, load_config
from marsvision.training.registry import method_class
from marsvision.training.sweep import grid_points

TINY = [
    "data.image_size=32",
    "data.batch_size=4",
    "data.global_batch_size=null",
    "data.unlabeled_batch_size=2",
    "data.val_fraction=0",
    "data.num_workers=0",
    "data.cache_dir=null",
    "model.projection_dim=8",
    "model.weights=null",  # no weights files here
    "optim.allow_frozen_random_backbone=true",
    "semiseg.embedding_dim=8",
    "semiseg.stage_epochs=[0,0,1]",  # the pseudo-label stage
    "less.stage_epochs=[0,1,0]",  # the pixel-contrast stage on fixed pseudo labels
    "less.resize=8",
    "segbaseline.reco_num_queries=4",
    "segbaseline.reco_num_negatives=8",
    "clsbaseline.decoupling_stage_epochs=[0,1]",  # the classifier re-training stage
    "clsbaseline.supcon_stage_epochs=[1,0]",  # SupCon's representation stage
    "clsbaseline.jigsaw_embedding_dim=8",
    "clsbaseline.jigsaw_hidden_dim=16",
    "simclr.crop_size=null",
    "simclr.chunk_size=2",  # two checkpointed chunks per view batch
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    'trainer.precision="32"',
    "trainer.devices=1",
    "trainer.num_nodes=1",
    "trainer.device=cpu",
    "trainer.early_stopping_patience=null",
    "trainer.progress_bar=false",
]


def tiny_encoder(name: str) -> str:
    """The smallest encoder of ``name``'s family: SimCLRv2 ResNets keep their selective kernels or not."""
    if name.startswith("r") and "_sk" in name:
        return f"r18_0.25x_sk{name[-1]}"
    return "resnet18" if name.startswith("resnet") else name


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("smoke")
    return {
        "ai4mars": Path(synthesize_ai4mars(base / "ai4mars", num_images=24, size=32, seed=0, release="0.6")["root"]),
        "msl-v1": Path(synthesize_msl_v1(base / "msl", num_images=48, size=32, seed=0)["root"]),
        "paired-folder": Path(synthesize_paired_folder(base / "paired", num_images=12, size=32, seed=0)["root"]),
    }


def first_point(recipe: str) -> list[str]:
    """The first grid point of a sweep recipe as overrides; a swept label fraction stays the recipe's own."""
    grid = load_config(recipe).sweep.grid
    if not grid:
        return []
    point = grid_points(grid)[0]
    return [
        f"{key}={value!r}" if isinstance(value, str) else f"{key}={_yaml(value)}"
        for key, value in point.items()
        if not key.endswith("fraction")
    ]


def _yaml(value: Any) -> str:
    return "null" if value is None else str(value).replace(" ", "").replace("'", "")


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("recipe", list(list_recipes()))
def test_every_recipe_trains_a_step_and_tests(recipe: str, roots: dict[str, Path], tmp_path: Path):
    point = first_point(recipe)
    config = load_config(recipe, point)
    overrides = [*point, *TINY, f"data.root={roots[config.data.dataset]}", f"runs_root={tmp_path}"]
    overrides.append(f"model.encoder={tiny_encoder(config.model.encoder)}")
    if config.data.test_holdout:
        overrides.append("data.test_holdout=2")
    if config.data.label_count:
        overrides.append("data.label_count=4")
    if config.model.encoder == "alexnet":
        overrides.append("data.image_size=64")  # AlexNet's stride-4 11x11 stem and three pools need more pixels
    result = train(load_config(recipe, overrides))
    assert math.isfinite(result["wall_time_s"])
    if method_class(config.method).task == "pretrain":
        assert Path(result["encoder"]).is_file()
    else:
        assert result["metrics"] and result["split_images"] > 0, recipe
