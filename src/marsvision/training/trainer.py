"""One place that turns a :class:`TrainerConfig` into a Lightning trainer writing into a run directory."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, EMAWeightAveraging, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.profilers import Profiler

from marsvision import runfolder
from marsvision.threads import apply_threads
from marsvision.training.callbacks import ConsoleProgress, JsonlMetrics
from marsvision.training.checkpoint import AtomicCheckpointIO
from marsvision.training.config import RunConfig
from marsvision.training.precision import resolve_precision
from marsvision.training.registry import method_class
from marsvision.training.reproducibility import StepReseed

ACCELERATORS = {"auto": "auto", "cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "mps": "mps"}

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
BOILERPLATE_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # torch deprecation inside Lightning, not our code
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"The '\w+_dataloader' does not have many workers",
    r"Checkpoint directory .* exists and is not empty",  # what a resumed run expects
)
"""Warnings every small or resumed run triggers, with nothing for the user to do about them."""


def silence_lightning() -> None:
    """Keep Lightning's per-run boilerplate off the console (``--verbose`` skips this call).

    Lightning's INFO lines (GPU/TPU availability, a logger-service tip, ``limit_train_batches=1.0 was
    configured``, ``Trainer.fit stopped``) and the :data:`BOILERPLATE_WARNINGS` go; its other warnings stay.
    """
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in BOILERPLATE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def resolve_device(name: str | None) -> torch.device:
    """The torch device of a ``--device`` value: ``auto``/None picks CUDA when present, else the CPU.

    Raises:
        ValueError: a GPU is asked for where none is available (one line for the CLI, not a traceback).
    """
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ACCELERATORS:
        raise ValueError(f"--device {name!r} is not one of {sorted(ACCELERATORS)}")
    if ACCELERATORS[name] == "gpu":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is available on this machine (use --device cpu)")
        return torch.device("cuda")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: no Apple GPU is available on this machine (use --device cpu)")
    return torch.device(name)


def build_trainer(
    config: RunConfig,
    run_dir: Path,
    *,
    has_validation: bool,
    extra_callbacks: list[L.Callback] | None = None,
    max_epochs: int | None = None,
    stage_of_epoch: Callable[[int], str] | None = None,
    find_unused_parameters: bool = False,
    profiler: Profiler | None = None,
) -> L.Trainer:
    """Lightning trainer with atomic checkpoints, per-epoch reseeding, JSON-lines and TensorBoard logs.

    ``devices > 1`` or ``num_nodes > 1`` selects DDP; under torchrun or SLURM Lightning reads the rank from the
    environment, so the same command line scales from one CPU to several nodes. Sets this process's operation
    threads (``trainer.threads``, :mod:`marsvision.threads`) and resolves ``trainer.precision`` for the device.
    """
    cfg = config.trainer
    device = resolve_device(cfg.device)  # a GPU asked for where there is none fails here, in one line
    workers = config.data.num_workers * len(method_class(config.method).streams)
    apply_threads(cfg.threads, workers, processes=cfg.devices if device.type == "cpu" else 1)  # DDP on CPUs
    checkpoint_dir = run_dir / runfolder.CHECKPOINT_DIR
    monitor = cfg.monitor if has_validation else None
    mode = "max" if monitor and monitor.endswith(("acc", "miou")) else "min"
    callbacks: list[L.Callback] = [
        # last.ckpt after every epoch (what --resume continues from), best.ckpt whenever the monitor improves.
        ModelCheckpoint(
            dirpath=checkpoint_dir,
            filename=runfolder.LAST_CHECKPOINT_NAME,
            save_top_k=1,
            enable_version_counter=False,
        ),
        JsonlMetrics(run_dir, stage_of_epoch),
        StepReseed(config.seed),
    ]
    # Lightning's own bar writes to stdout (which carries only a command's result): ours writes to stderr.
    callbacks.append(ConsoleProgress(live=cfg.progress_bar and sys.stderr.isatty(), stage_of_epoch=stage_of_epoch))
    if monitor:
        callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                filename=runfolder.BEST_CHECKPOINT_NAME,
                monitor=monitor,
                mode=mode,
                enable_version_counter=False,
            )
        )
    if monitor and cfg.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience))
    if cfg.ema_decay is not None:  # checkpoints then hold the average (the last weights under current_model_state)
        callbacks.append(EMAWeightAveraging(decay=cfg.ema_decay))
    callbacks.extend(extra_callbacks or [])
    distributed = cfg.devices > 1 or cfg.num_nodes > 1
    return L.Trainer(
        accelerator=ACCELERATORS[cfg.device],
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=("ddp_find_unused_parameters_true" if find_unused_parameters else "ddp") if distributed else "auto",
        precision=resolve_precision(cfg.precision, device),  # type: ignore[arg-type]
        max_epochs=max_epochs if max_epochs is not None else cfg.max_epochs,
        limit_train_batches=cfg.limit_train_batches,
        log_every_n_steps=cfg.log_every_n_steps,
        logger=TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(run_dir),
        profiler=profiler,
    )
