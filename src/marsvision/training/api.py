"""Train, resume and evaluate runs: what the CLI commands ``pretrain``, ``train`` and ``evaluate`` call."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, cast

import lightning as L
import yaml
from torch import nn

from marsvision import runfolder
from marsvision.evaluation.probabilities import check_tta
from marsvision.models.weights import export_encoder
from marsvision.torchfiles import safe_torch_load
from marsvision.training import runs
from marsvision.training.config import ConfigError, RunConfig, from_dict
from marsvision.training.data import ClassInfo, RunData, build_eval_dataset, build_run_data
from marsvision.training.evaluate import evaluate_model
from marsvision.training.factory import resolve_weights
from marsvision.training.lightning_base import MarsvisionModule
from marsvision.training.optim import check_backbone_start
from marsvision.training.registry import method_class
from marsvision.training.scaling import resolve_batch_and_lr
from marsvision.training.trainer import build_trainer, resolve_device

log = logging.getLogger(__name__)


def _resolve_resume(resume: Path) -> tuple[Path, Path]:
    """(run directory, checkpoint file) from either of them."""
    if not resume.exists():
        raise FileNotFoundError(f"{resume}: no such run directory or checkpoint")
    if resume.is_dir():
        checkpoint = runfolder.last_checkpoint(resume)
        run_dir = resume
    else:
        checkpoint = resume
        run_dir = resume.parent.parent
    _config_of_run(run_dir)  # a folder that is no run says so before the missing checkpoint does
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no checkpoint to resume from (the run stopped before its first epoch)")
    return run_dir, checkpoint


def _config_of_run(run_dir: Path) -> RunConfig:
    path = run_dir / runfolder.CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a marsvision run directory ({runfolder.CONFIG_FILE} missing)")
    config: RunConfig = from_dict(RunConfig, yaml.safe_load(path.read_text()))
    return config


def config_of_resume(resume: Path) -> RunConfig:
    """The saved config of the run that ``--resume`` (a run directory or one of its checkpoints) continues."""
    return _config_of_run(_resolve_resume(resume)[0])


def resolved_references(config: RunConfig) -> dict[str, dict[str, str]]:
    """What a ``latest:NAME`` reference in the config names now: ``{"model.weights": {"reference", "file"}}``."""
    weights = config.model.initial_weights
    if not weights or not weights.startswith("latest:"):
        return {}
    found = resolve_weights(weights, config.runs_root)
    log.info(f"model.weights={weights} → {found}")
    return {"model.weights": {"reference": weights, "file": str(found), "run": found.parent.name}}


def build_module_and_data(config: RunConfig) -> tuple[MarsvisionModule, RunData]:
    """The Lightning module of ``config.method`` and the data its streams declare."""
    module_class = method_class(config.method)
    data = build_run_data(config, module_class.task, module_class.streams)
    return module_class(config, data.classes), data


def train(config: RunConfig | None, *, resume: Path | None = None, argv: list[str] | None = None) -> dict[str, Any]:
    """Fit ``config`` in a new run directory (or continue ``resume``), then evaluate on the held-out split.

    The device, data, model and initial weights are checked before the run directory is made, so a bad start
    leaves no folder; a run that fails later gets a ``FAILED`` file. Resuming a run that finished returns its
    saved result; resuming one that stopped drops its ``FAILED`` mark and stale temp files first.

    Returns a JSON-able summary: run directory, best checkpoint, wall time, and the test metrics with the name
    and size of the split they were measured on (``split``, ``split_images``).
    """
    started = time.perf_counter()
    checkpoint: Path | None = None
    if resume is not None:
        run_dir, checkpoint = _resolve_resume(resume)
        config = _config_of_run(run_dir)
        if (run_dir / runfolder.RESULT_FILE).is_file():
            log.info(f"{run_dir} finished already: nothing to resume ({runfolder.RESULT_FILE} holds its result)")
            finished: dict[str, Any] = json.loads((run_dir / runfolder.RESULT_FILE).read_text())
            return finished
        runs.prepare_resume(run_dir)
        resumed_epoch = int(safe_torch_load(checkpoint)["epoch"]) + 1
        runs.truncate_metrics(run_dir, resumed_epoch)
    elif config is None:
        raise ValueError("train needs a config or a run to resume")
    config = resolve_batch_and_lr(config)  # the per-device batch and the lr the run really has
    # Everything that can be checked is checked before the run folder exists: a wrong device, root, layout,
    # weights file or value fails in one line and leaves no folder behind.
    resolve_device(config.trainer.device)
    if resume is None:
        check_backbone_start(config)
    references = resolved_references(config) if resume is None else {}
    L.seed_everything(config.seed, workers=True, verbose=False)
    module, data = build_module_and_data(config)
    if module.total_epochs() == 0:
        raise ConfigError(f"method {config.method!r} trains for 0 epochs with this config (its stages are all empty)")
    if resume is None:
        run_dir = runs.create_run_dir(config, argv, references)
        if config.trainer.devices > 1 or config.trainer.num_nodes > 1:
            os.environ[runs.RUN_DIR_ENV] = str(run_dir)  # the ranks Lightning launches inherit the environment
    with runs.failure_marked(run_dir):
        return _fit_and_test(config, run_dir, module, data, checkpoint, started)


def _fit_and_test(
    config: RunConfig,
    run_dir: Path,
    module: MarsvisionModule,
    data: RunData,
    checkpoint: Path | None,
    started: float,
) -> dict[str, Any]:
    """Fit in ``run_dir`` (from ``checkpoint`` if given), test the best checkpoint, write ``result.json``."""
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
        head = cast(nn.Module, module.projection_head)  # kept for a task head on a middle layer of g (SimCLRv2)
        exported = export_encoder(encoder, config.model.encoder, run_dir / runfolder.ENCODER_FILE, head)
        result["encoder"] = str(exported)
    if data.test is not None and trainer.is_global_zero:
        state = safe_torch_load(result["checkpoint"])
        module.load_state_dict(state["state_dict"])
        module.to(trainer.strategy.root_device)  # Lightning's teardown left it on the CPU: test where it trained
        evaluation = evaluate_model(
            module, data.test, config, data.classes.names, run_dir=run_dir, split=data.test_split
        )
        images = len(data.test)  # type: ignore[arg-type]
        result.update(split=data.test_split, split_images=images, metrics=_headline(evaluation["metrics"]))
    result["wall_time_s"] = round(time.perf_counter() - started, 1)
    runs.write_json_atomic(run_dir / runfolder.RESULT_FILE, result)
    return result


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar metrics of an evaluation (per-class dicts stay in eval.json)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def load_module(checkpoint: Path) -> tuple[MarsvisionModule, RunConfig]:
    """Rebuild a trained module from its checkpoint alone (config and class names travel inside).

    Raises:
        FileNotFoundError: no such file (a run directory names its checkpoints in the message).
        ValueError: not a marsvision training checkpoint, or one of a pretraining run (no classifier to run).
    """
    if checkpoint.is_dir():
        raise FileNotFoundError(
            f"{checkpoint}: a folder; give a checkpoint file such as {runfolder.best_checkpoint(checkpoint)}"
        )
    state = safe_torch_load(checkpoint)
    hparams = state.get("hyper_parameters") if isinstance(state, dict) else None
    if not isinstance(hparams, dict) or "config" not in hparams or "state_dict" not in state:
        raise ValueError(
            f"{checkpoint}: not a marsvision training checkpoint (an encoder.pt or other weights file goes to "
            "model.weights= of a training run)"
        )
    config = MarsvisionModule.config_from_hparams(hparams)
    module_class = method_class(config.method)
    if module_class.task == "pretrain":
        raise ValueError(
            f"{checkpoint}: a {config.method} pretraining checkpoint has no classifier to evaluate or predict "
            f"with; fine-tune it first (model.weights={checkpoint})"
        )
    module = module_class(config, ClassInfo.from_hparams(hparams))
    try:
        module.load_state_dict(state["state_dict"])
    except RuntimeError as error:  # a checkpoint of another network shape
        raise ValueError(f"{checkpoint}: its weights do not fit method {config.method!r}: {error}") from error
    module.eval()
    return module, config


def evaluate_checkpoint(
    target: Path,
    *,
    split: str | None = None,
    data_root: str | None = None,
    device: str | None = None,
    tta: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run's best checkpoint (or a checkpoint file) on ``split``; writes ``eval-<split>.json``.

    ``device``: ``auto`` (default: CUDA when present), ``cpu`` or ``cuda``. ``tta``: ``flip`` or ``none``
    (default: the run's ``trainer.test_time_augmentation``); with ``flip`` the file is ``eval-<split>-tta-flip.json``.
    """
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such run directory or checkpoint")
    if target.is_dir():
        _config_of_run(target)  # a folder that is no run says so
        checkpoint = runfolder.best_checkpoint(target)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{target}: the run has no checkpoint yet ({checkpoint.name} missing)")
        run_dir: Path | None = target
    else:
        checkpoint, run_dir = target, None
    target_device = resolve_device(device)
    module, config = load_module(checkpoint)
    module.to(target_device)
    if data_root is not None:
        config.data.root = data_root
    if tta is not None:
        config.trainer.test_time_augmentation = check_tta(tta)
    dataset, class_names, split_name = build_eval_dataset(config, split)
    evaluation = evaluate_model(module, dataset, config, class_names, run_dir=run_dir, split=split_name, primary=False)
    return {
        "checkpoint": str(checkpoint),
        "split": split_name,
        "split_images": len(dataset),  # type: ignore[arg-type]
        "task": module.task,
        "test_time_augmentation": config.trainer.test_time_augmentation,
        "metrics": _headline(evaluation["metrics"]),
    }
