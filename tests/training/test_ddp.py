"""Two-process DDP on the CPU (gloo) through the real command line: one run directory, one report, and what is
gathered across ranks (SimCLR's negatives, the memory bank's entries) equals a one-process computation on the
concatenated batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DistributedSampler, Subset

from marsvision.data.labels import downsample_labels
from marsvision.data.transforms import segmentation_train_transform
from marsvision.data.wrappers import MappedDataset
from marsvision.losses.nt_xent import nt_xent_loss
from marsvision.runfolder import last_checkpoint
from marsvision.training import runs
from marsvision.training.checkpoint import safe_torch_load
from marsvision.training.config import load_config
from marsvision.training.data import _simclr_views, reader, split_indices, unlabeled_images
from marsvision.training.pretrain import SimCLRModule
from marsvision.training.reproducibility import DrawKey, EpochSeededSampler, ItemSeeded

WORLD, PER_RANK = 2, 2


def data_overrides(paired_folder: Path, runs_root: Path) -> list[str]:
    return [
        "data.dataset=paired-folder",
        f"data.root={paired_folder}",
        "data.class_mode=terrain4",
        "data.image_size=32",
        f"data.batch_size={PER_RANK}",
        "data.unlabeled_batch_size=2",
        "data.test_holdout=2",
        "data.val_fraction=0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.progress_bar=false",
        f"runs_root={runs_root}",
    ]


def run_two_processes(command: str, recipe: str, overrides: list[str]) -> tuple[dict, Path]:
    arguments = [sys.executable, "-m", "marsvision.cli", command, "-r", recipe, *overrides]
    arguments += ["--device", "cpu", "--devices", str(WORLD), "--json"]
    environment = {k: v for k, v in os.environ.items() if k != runs.RUN_DIR_ENV}
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = done.stdout.strip().splitlines()  # only rank 0 reports
    result = json.loads(line)
    run_dir = Path(result["run_dir"])
    assert run_dir.parent.is_dir() and list(run_dir.parent.iterdir()) == [run_dir], "ranks share one run directory"
    return result, run_dir


def rank_batches(size: int, seed: int) -> list[list[DrawKey]]:
    """The draw keys of each rank's first batch: Lightning deals marsvision's epoch order out to the ranks
    through a ``DistributedSampler`` (shuffled with the run's seed), which the test replays."""
    order = list(EpochSeededSampler(size, seed))
    batches = []
    for rank in range(WORLD):
        dealt = list(DistributedSampler(range(size), num_replicas=WORLD, rank=rank, shuffle=True, seed=seed))
        batches.append([order[i] for i in dealt[:PER_RANK]])
    return batches


def test_simclr_negatives_are_gathered_from_both_ranks(paired_folder: Path, tmp_path: Path):
    overrides = [*data_overrides(paired_folder, tmp_path / "runs"), "model.projection_dim=8"]
    result, run_dir = run_two_processes("pretrain", "demo-simclr", overrides)
    (logged,) = [r["loss"] for r in runs.read_metrics(run_dir) if r["split"] == "train"]

    # the same step in one process: each rank's half through the encoder (BatchNorm sees its own half), then
    # the loss of every anchor against all 2·4 views
    config = load_config("demo-simclr", overrides)
    pairs = ItemSeeded(MappedDataset(unlabeled_images(config, None), _simclr_views(config)), config.seed)
    L.seed_everything(config.seed, verbose=False)
    module = SimCLRModule(config).train()
    halves = []
    with torch.no_grad():
        for keys in rank_batches(len(pairs), config.seed):
            items = [pairs[key] for key in keys]
            views = [torch.stack([item["views"][v] for item in items]) for v in range(2)]
            halves.append([module.projection_head(module.encoder(view)) for view in views])
        z1, z2 = (torch.cat([half[v] for half in halves]) for v in range(2))
        gathered = nt_xent_loss(z1, z2, config.simclr.temperature).item()
        local = sum(nt_xent_loss(h[0], h[1], config.simclr.temperature).item() for h in halves) / WORLD
    assert abs(gathered - local) > 1e-3, "the check could not tell gathered from local negatives"
    assert logged == pytest.approx(gathered, rel=1e-4)
    assert result["images_seen"]["unlabeled"] == len(pairs)


def test_memory_bank_entries_are_gathered_from_both_ranks(paired_folder: Path, tmp_path: Path):
    overrides = [
        *data_overrides(paired_folder, tmp_path / "runs"),
        "semiseg.stage_epochs=[1,0,0]",  # one step of stage 1: every labeled image pushes its class means
        "semiseg.embedding_dim=8",
        "data.label_fraction=1",
    ]
    _, run_dir = run_two_processes("train", "demo-semiseg", overrides)
    sizes = safe_torch_load(last_checkpoint(run_dir))["state_dict"]["contrastive.bank.size"]

    config = load_config("demo-semiseg", overrides)
    pool = reader(config.data, "train")
    splits = split_indices(config.data, pool, lambda: None)
    augmented = reader(config.data, "train", transform=segmentation_train_transform(config.data.image_size))
    labeled = ItemSeeded(Subset(augmented, splits.labeled), config.seed)  # what the labeled stream yields

    def classes_present(key: DrawKey) -> set[int]:
        label = labeled[key]["label"]
        small = downsample_labels(label.unsqueeze(0), (8, 8))  # the embedding's stride-4 grid
        return {int(c) for c in small.unique() if int(c) != 255}

    per_rank = [[classes_present(i) for i in batch] for batch in rank_batches(len(splits.labeled), config.seed)]

    def counts(images: list[set[int]]) -> list[int]:
        return [sum(c in present for present in images) for c in range(4)]

    expected = counts([present for batch in per_rank for present in batch])
    assert expected != counts(per_rank[0]), "the check could not tell gathered from local entries"
    assert sizes.tolist() == expected
