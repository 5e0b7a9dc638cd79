"""Train, resume and evaluate runs: what the CLI commands ``pretrain``, ``train`` and ``evaluate`` call."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

import lightning as L
import yaml
from torch import nn

from marsvision import runfolder
from marsvision.models.weights import export_encoder
from marsvision.training import runs
from marsvision.training.checkpoint import safe_torch_load
from marsvision.training.config import RunConfig, from_dict
from marsvision.training.data import ClassInfo, RunData, build_eval_dataset, build_run_data
from marsvision.training.evaluate import evaluate_model
from marsvision.training.lightning_base import MarsvisionModule
from marsvision.training.registry import method_class
from marsvision.training.trainer import build_trainer, resolve_device


class _CurrentStderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignore the stream given at construction: the current ``sys.stderr`` is always used."""


def send_logs_to_stderr() -> None:
    """Route Lightning's logging to stderr so that stdout holds only a ``--json`` result."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers = [_CurrentStderr()]
        logger.propagate = False


def _resolve_resume(resume: Path) -> tuple[Path, Path]:
    """(run directory, checkpoint file) from either of them."""
    if resume.is_dir():
        checkpoint = runfolder.last_checkpoint(resume)
        run_dir = resume
    else:
        checkpoint = resume
        run_dir = resume.parent.parent
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no checkpoint to resume from")
    return run_dir, checkpoint


def _config_of_run(run_dir: Path) -> RunConfig:
    path = run_dir / runfolder.CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a marsvision run directory (config.yaml missing)")
    config: RunConfig = from_dict(RunConfig, yaml.safe_load(path.read_text()))
    return config


def build_module_and_data(config: RunConfig) -> tuple[MarsvisionModule, RunData]:
    """The Lightning module of ``config.method`` and the data its streams declare."""
    module_class = method_class(config.method)
    data = build_run_data(config, module_class.task, module_class.streams)
    return module_class(config, data.classes), data


def train(config: RunConfig | None, *, resume: Path | None = None, argv: list[str] | None = None) -> dict[str, Any]:
    """Fit ``config`` in a new run directory (or continue ``resume``), then evaluate on the held-out split.

    Returns a JSON-able summary: run directory, best checkpoint, wall time and the test metrics.
    """
    started = time.perf_counter()
    checkpoint: Path | None = None
    if resume is not None:
        run_dir, checkpoint = _resolve_resume(resume)
        config = _config_of_run(run_dir)
        resumed_epoch = int(safe_torch_load(checkpoint)["epoch"]) + 1
        runs.truncate_metrics(run_dir, resumed_epoch)
    elif config is None:
        raise ValueError("train needs a config or a run to resume")
    else:
        run_dir = runs.create_run_dir(config, argv)
        if config.trainer.devices > 1 or config.trainer.num_nodes > 1:
            os.environ[runs.RUN_DIR_ENV] = str(run_dir)  # the ranks Lightning launches inherit the environment
    L.seed_everything(config.seed, workers=True, verbose=False)
    module, data = build_module_and_data(config)
    trainer = build_trainer(
        config,
        run_dir,
        has_validation=data.val is not None,
        max_epochs=module.total_epochs(),
        stage_of_epoch=module.stage_of_epoch,
        find_unused_parameters=module.find_unused_parameters,
    )
    trainer.fit(
        module,
        train_dataloaders=data.train,
        val_dataloaders=data.val,
        ckpt_path=str(checkpoint) if checkpoint else None,
        weights_only=True,
    )
    if trainer.num_training_batches == 0:
        raise ValueError(
            f"{config.data.root}: no training batch — too few training images for batch size "
            f"{config.data.batch_size} on {config.trainer.devices} device(s) (see data.label_fraction, data.batch_size)"
        )
    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "method": config.method,
        "task": module.task,
        "images_seen": data.images_seen,
        "checkpoint": str(runfolder.best_checkpoint(run_dir)),
    }
    if module.task == "pretrain" and trainer.is_global_zero:
        encoder = cast(nn.Module, module.encoder)
        result["encoder"] = str(export_encoder(encoder, config.model.encoder, run_dir / runfolder.ENCODER_FILE))
    if data.test is not None and trainer.is_global_zero:
        state = safe_torch_load(result["checkpoint"])
        module.load_state_dict(state["state_dict"])
        module.to(trainer.strategy.root_device)  # Lightning's teardown left it on the CPU: test where it trained
        evaluation = evaluate_model(
            module, data.test, config, data.classes.names, run_dir=run_dir, split=data.test_split
        )
        result["metrics"] = _headline(evaluation["metrics"])
    result["wall_time_s"] = round(time.perf_counter() - started, 1)
    runs.write_json_atomic(run_dir / runfolder.RESULT_FILE, result)
    return result


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar metrics of an evaluation (per-class dicts stay in eval.json)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def load_module(checkpoint: Path) -> tuple[MarsvisionModule, RunConfig]:
    """Rebuild a trained module from its checkpoint alone (config and class names travel inside)."""
    state = safe_torch_load(checkpoint)
    hparams = state.get("hyper_parameters")
    if not isinstance(hparams, dict) or "config" not in hparams:
        raise ValueError(f"{checkpoint}: not a marsvision training checkpoint (no hyper_parameters.config)")
    config = MarsvisionModule.config_from_hparams(hparams)
    module = method_class(config.method)(config, ClassInfo.from_hparams(hparams))
    module.load_state_dict(state["state_dict"])
    module.eval()
    return module, config


def evaluate_checkpoint(
    target: Path, *, split: str | None = None, data_root: str | None = None, device: str | None = None
) -> dict[str, Any]:
    """Evaluate a run's best checkpoint (or a checkpoint file) on ``split``; writes ``eval-<split>.json``.

    ``device``: ``auto`` (default: CUDA when present), ``cpu`` or ``cuda``.
    """
    if target.is_dir():
        checkpoint = runfolder.best_checkpoint(target)
        run_dir: Path | None = target
    else:
        checkpoint, run_dir = target, None
    module, config = load_module(checkpoint)
    module.to(resolve_device(device))
    if data_root is not None:
        config.data.root = data_root
    dataset, class_names, split_name = build_eval_dataset(config, split)
    evaluation = evaluate_model(module, dataset, config, class_names, run_dir=run_dir, split=split_name, primary=False)
    return {"checkpoint": str(checkpoint), "split": split_name, "metrics": _headline(evaluation["metrics"])}
