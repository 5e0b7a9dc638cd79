"""Training steps through marsvision's whole pipeline on synthetic folders: decode, augmentation, step.

Four step kinds, each a CPU recipe of the project (``--size tiny``: a demo recipe at a few pixels):

- ``finetune``: paper 000's fine-tuning (``finetune-ai4mars256-cpu``: r18_0.5x_sk0, 128², batch 8);
- ``semiseg``: paper 002's semi-supervised segmentation in its joint stage (``wang-seg-ai4mars256-cpu``:
  DeepLabv3+ ResNet-18, 96², batch 8 + 8 unlabeled);
- ``semicls``: paper 002's semi-supervised classification (``wang-cls-msl-cpu``: ResNet-18, 64², 3 channels,
  labeled, class-balanced and two-view unlabeled streams);
- ``simclr``: SimCLR pretraining (``simclr-ai4mars256-cpu``: r18_0.5x_sk0, 128² images, 96² views, batch 64).

A run reads a folder written by ``synthesize_paired_folder`` (256² JPEG/PNG pairs, as the real AI4Mars 256 folder)
or ``synthesize_msl_v1`` (MSL-like colour images) through ``build_run_data`` and trains with marsvision's trainer
for two epochs of ``steps`` steps. The first epoch warms up (first calls, compilation, the caches); the second is
timed, one step from one ``on_train_batch_start`` to the next, so a step includes reading and augmenting its
batch (``num_workers: 0``, the CPU recipes' setting) and every hook.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmarks.common import pick, quiet_lightning, sync


@dataclass(frozen=True)
class StepKind:
    """A step kind: its recipe per benchmark size, the synthetic dataset it reads, overrides of its own."""

    recipes: dict[str, str]
    dataset: str
    overrides: tuple[str, ...] = ()
    fast_extra: tuple[str, ...] = ()
    """Switches that join ``fast`` for this kind only (measured to help it, not the others)."""


CHANNELS_LAST = ("trainer.channels_last=true",)
"""With bf16 on this CPU, NHWC convolutions sped up the SK-ResNet steps (SimCLR 1.6 → 2.0× today, fine-tuning
1.26 → 1.35×) and slowed DeepLabv3+ (semiseg 1.44 → 1.28×); benchmarks/README.md, 2026-11-30."""

KINDS = {
    "finetune": StepKind(
        {"tiny": "demo-label-fractions", "cpu": "finetune-ai4mars256-cpu", "gpu": "finetune-ai4mars"},
        "paired-folder",
        fast_extra=CHANNELS_LAST,
    ),
    "semiseg": StepKind(
        {"tiny": "demo-semiseg", "cpu": "wang-seg-ai4mars256-cpu", "gpu": "wang-seg-ai4mars"},
        "paired-folder",
        ("semiseg.stage_epochs=[0,2,0]", "data.label_fraction=0.5"),  # the joint stage: L_ce + λ L_s
    ),
    "semicls": StepKind(
        {"tiny": "demo-classification", "cpu": "wang-cls-msl-cpu", "gpu": "wang-cls-msl"},
        "msl-v1",
        ("data.label_fraction=0.5",),
    ),
    "simclr": StepKind(
        {"tiny": "demo-simclr", "cpu": "simclr-ai4mars256-cpu", "gpu": "simclr-ai4mars"},
        "paired-folder",
        fast_extra=CHANNELS_LAST,
    ),
}
"""The step kinds, by the names the results use."""

TODAY = (
    "trainer.precision='32'",
    "trainer.compile=false",
    "trainer.channels_last=false",
    "data.memory_cache_mib=0",
    "simclr.batched_views=false",
    "classification.batched_views=false",
)
"""marsvision before issue #16: float32, eager, NCHW, per-image views, no memory cache (the recipes' disk cache
stays on)."""
SWITCHES: dict[str, tuple[str, ...]] = {
    "today": (),
    "bf16": ("trainer.precision=auto",),
    "channels_last": ("trainer.channels_last=true",),
    "compile": ("trainer.compile=true",),
    "batched_views": ("simclr.batched_views=true", "classification.batched_views=true"),
    "memory_cache": ("data.memory_cache_mib=512",),
    "fast": (
        "trainer.precision=auto",
        "simclr.batched_views=true",
        "classification.batched_views=true",
        "data.memory_cache_mib=512",
    ),
}
"""Each speed switch alone on top of :data:`TODAY`, and ``fast``: bf16 where native, batched views, memory cache
(not ``compile``, whose minutes of compilation per run short runs do not earn back; ``channels_last`` only for
the kinds whose ``fast_extra`` adds it)."""


def switches_for(kind: str) -> dict[str, tuple[str, ...]]:
    """:data:`SWITCHES` with ``fast`` completed by the kind's own ``fast_extra``."""
    return {**SWITCHES, "fast": SWITCHES["fast"] + KINDS[kind].fast_extra}


PAIRED_FOLDER = ["data.class_mode=terrain4", "data.test_holdout=2"]
"""A paired folder has the four terrain classes and no test split of its own (two images are held out)."""


TINY = ["data.image_size=32", "data.batch_size=4", "data.unlabeled_batch_size=4"]
"""The ``--size tiny`` run checks that the code runs: the demo recipes at 32 px, four images a batch."""


def steps_for(size: str) -> int:
    """Steps per epoch: the second epoch's are timed."""
    return int(pick(size, tiny=3, cpu=8, gpu=20))


def synthetic_folder(kind: str, size: str, root: Path, steps: int) -> Path:
    """Write the folder a step kind reads, with images for ``steps`` labeled batches and as many unlabeled ones."""
    from marsvision.data.synth import synthesize_msl_v1, synthesize_paired_folder
    from marsvision.training.config import load_config

    config = load_config(KINDS[kind].recipes[size], [])
    images = 2 * steps * max(config.data.batch_size, config.data.unlabeled_batch_size) + 8
    folder = root / kind
    if KINDS[kind].dataset == "msl-v1":  # its training list holds about half of the images
        synthesize_msl_v1(folder, num_images=3 * images, size=max(config.data.image_size, 32), seed=0)
    else:
        synthesize_paired_folder(folder, num_images=images, size=pick(size, tiny=64, cpu=256, gpu=512), seed=0)
    return folder


def kind_config(kind: str, size: str, folder: Path, cache_dir: Path, steps: int, extra: tuple[str, ...]) -> Any:
    """The recipe of ``kind`` reading ``folder``, two epochs of ``steps`` steps, :data:`TODAY` and ``extra``."""
    from marsvision.training.config import load_config

    device = "cuda" if size == "gpu" and torch.cuda.is_available() else "cpu"
    overrides = [
        f"data.dataset={KINDS[kind].dataset}",
        f"data.root={folder}",
        f"data.cache_dir={cache_dir}",
        "data.val_fraction=0",
        "data.chronological=null",
        "data.reshuffle_trainval=null",
        "data.num_workers=0",
        "model.weights=null",
        f"trainer.device={device}",
        "trainer.max_epochs=2",
        f"trainer.limit_train_batches={steps}",
        "trainer.early_stopping_patience=null",
        "trainer.progress_bar=false",
        *(PAIRED_FOLDER if KINDS[kind].dataset == "paired-folder" else ["data.test_holdout=0"]),
        *KINDS[kind].overrides,
        *(TINY if size == "tiny" else []),
        *TODAY,
        *extra,
    ]
    return load_config(KINDS[kind].recipes[size], overrides)


class EpochStepTimes(L.Callback):
    """Seconds from each training step's start to the next one's, within one epoch, per epoch."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.starts: dict[int, list[float]] = {}

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, index: int) -> None:
        sync(self.device)
        self.starts.setdefault(trainer.current_epoch, []).append(time.perf_counter())

    def step_seconds(self, epoch: int) -> list[float]:
        starts = self.starts.get(epoch, [])
        return [after - before for before, after in itertools.pairwise(starts)]


def run_pipeline(config: Any) -> dict[str, Any]:
    """Train ``config`` (two epochs) through marsvision's pipeline; the second epoch's step times."""
    from marsvision.training.api import build_module_and_data
    from marsvision.training.trainer import build_trainer

    device = torch.device("cuda" if config.trainer.device == "cuda" else "cpu")
    timer = EpochStepTimes(device)
    torch.manual_seed(config.seed)
    with quiet_lightning(), tempfile.TemporaryDirectory() as run_dir:
        module, data = build_module_and_data(config)
        trainer = build_trainer(config, Path(run_dir), has_validation=False, extra_callbacks=[timer])
        trainer.fit(module, train_dataloaders=data.train)
        precision = str(trainer.precision)
    seconds = timer.step_seconds(1)
    median = statistics.median(seconds)
    return {
        "precision": precision,
        "step_ms": 1e3 * median,
        "images_per_s": config.data.batch_size / median,  # the first, epoch-defining stream's images
        "steps_timed": len(seconds),
    }


def describe(config: Any) -> dict[str, Any]:
    """What a step kind trains: recipe, method, model, sizes."""
    return {
        "recipe": config.name,
        "method": config.method,
        "encoder": config.model.encoder,
        "image_size": config.data.image_size,
        "batch_size": config.data.batch_size,
        "unlabeled_batch_size": config.data.unlabeled_batch_size,
    }
