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
from lightning.pytorch.utilities import CombinedLoader
from torch import nn

from marsvision.training import runs
from marsvision.training.checkpoint import atomic_torch_save, safe_torch_load
from marsvision.training.config import RunConfig, from_dict
from marsvision.training.data import (
    build_classification_data,
    build_eval_dataset,
    build_pretraining_data,
    build_segmentation_data,
    cycling_loader,
    make_loader,
    test_split_name,
)
from marsvision.training.evaluate import evaluate_model
from marsvision.training.lightning_base import MarsvisionModule
from marsvision.training.trainer import build_trainer

ENCODER_FILE = "encoder.pt"
"""The pretrained encoder a pretraining run leaves next to its checkpoints (``latest:<name>`` finds it)."""


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
        checkpoint = resume / runs.LAST_CHECKPOINT
        run_dir = resume
    else:
        checkpoint = resume
        run_dir = resume.parent.parent
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no checkpoint to resume from")
    return run_dir, checkpoint


def _config_of_run(run_dir: Path) -> RunConfig:
    path = run_dir / runs.CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a marsvision run directory (config.yaml missing)")
    config: RunConfig = from_dict(RunConfig, yaml.safe_load(path.read_text()))
    return config


def build_module_and_loaders(config: RunConfig) -> tuple[MarsvisionModule, Any, Any, dict[str, Any]]:
    """The Lightning module of ``config.task`` with its train and validation loaders and held-out data."""
    from marsvision.training.classification import ClassificationModule
    from marsvision.training.pretrain import SimCLRModule
    from marsvision.training.seg_baselines import SegBaselineModule
    from marsvision.training.segmentation import SegmentationModule
    from marsvision.training.semiseg import SemiSegModule

    data_cfg = config.data
    if config.task == "pretrain":
        dataset = build_pretraining_data(config)
        loader = make_loader(
            dataset,
            data_cfg,
            batch_size=data_cfg.batch_size,
            shuffle_seed=config.seed,
            drop_last=len(dataset) > data_cfg.batch_size,  # type: ignore[arg-type]
        )
        return SimCLRModule(config), loader, None, {}
    if config.task in ("segmentation", "semiseg"):
        seg = build_segmentation_data(config)
        # A last batch of one image breaks BatchNorm (and SK attention): drop the remainder when there is a full batch.
        train_loader: Any = make_loader(
            seg.train,
            data_cfg,
            batch_size=data_cfg.batch_size,
            shuffle_seed=config.seed,
            drop_last=len(seg.train) > data_cfg.batch_size,  # type: ignore[arg-type]
        )
        val_loader = make_loader(seg.val, data_cfg, batch_size=data_cfg.batch_size) if seg.val else None
        held_out = {"test": seg.test, "class_names": seg.class_names, "split": test_split_name(data_cfg)}
        if config.task == "segmentation" and config.segbaseline.method == "none":
            return SegmentationModule(config, seg.class_names), train_loader, val_loader, held_out
        unlabeled_loader = cycling_loader(
            seg.unlabeled,
            data_cfg,
            batch_size=data_cfg.unlabeled_batch_size,
            steps=len(train_loader),
            seed=config.seed + 2,
        )
        loaders = CombinedLoader({"labeled": train_loader, "unlabeled": unlabeled_loader}, mode="min_size")
        method = SemiSegModule if config.task == "semiseg" else SegBaselineModule  # the Table 8 baselines
        return method(config, seg.class_names), loaders, val_loader, held_out
    if config.task == "classification":
        cls = build_classification_data(config)
        module = ClassificationModule(
            config, cls.class_names, samples_per_class=cls.samples_per_class, class_ids=cls.class_ids
        )
        val_loader = make_loader(cls.val, data_cfg, batch_size=data_cfg.batch_size) if cls.val else None
        held_out = {"test": cls.test, "class_names": cls.class_names, "split": test_split_name(data_cfg)}
        return module, cls.train_loaders, val_loader, held_out
    raise ValueError(f"unknown task {config.task!r}")


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
    module, train_loaders, val_loader, held_out = build_module_and_loaders(config)
    trainer = build_trainer(
        config,
        run_dir,
        has_validation=val_loader is not None,
        max_epochs=module.total_epochs(),
        stage_of_epoch=module.stage_of_epoch,
        find_unused_parameters=module.find_unused_parameters,
    )
    trainer.fit(
        module,
        train_dataloaders=train_loaders,
        val_dataloaders=val_loader,
        ckpt_path=str(checkpoint) if checkpoint else None,
        weights_only=True,
    )
    if trainer.num_training_batches == 0:
        raise ValueError(
            f"{config.data.root}: no training batch — too few training images for batch size "
            f"{config.data.batch_size} on {config.trainer.devices} device(s) (see data.label_fraction, data.batch_size)"
        )
    result: dict[str, Any] = {"run_dir": str(run_dir), "task": config.task}
    best = run_dir / "checkpoints" / "best.ckpt"
    result["checkpoint"] = str(best if best.is_file() else run_dir / runs.LAST_CHECKPOINT)
    if config.task == "pretrain" and trainer.is_global_zero:
        result["encoder"] = str(export_encoder(module, run_dir / ENCODER_FILE))
    if config.task != "pretrain" and trainer.is_global_zero:
        state = safe_torch_load(result["checkpoint"])
        module.load_state_dict(state["state_dict"])
        evaluation = evaluate_model(
            module, held_out["test"], config, held_out["class_names"], run_dir=run_dir, split=held_out["split"]
        )
        result["metrics"] = _headline(evaluation["metrics"])
    result["wall_time_s"] = round(time.perf_counter() - started, 1)
    runs.write_json_atomic(run_dir / runs.RESULT_FILE, result)
    return result


def export_encoder(module: MarsvisionModule, path: Path) -> Path:
    """Save the pretrained encoder alone (``{"encoder_name", "state_dict"}``) for fine-tuning runs to load."""
    encoder = cast(nn.Module, module.encoder)
    payload = {"encoder_name": module.config.model.encoder, "state_dict": encoder.state_dict()}
    atomic_torch_save(payload, path)
    return path


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar metrics of an evaluation (per-class dicts stay in eval.json)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def load_module(checkpoint: Path) -> tuple[MarsvisionModule, RunConfig]:
    """Rebuild a trained module from its checkpoint alone (config and class names travel inside)."""
    from marsvision.training.classification import ClassificationModule
    from marsvision.training.pretrain import SimCLRModule
    from marsvision.training.seg_baselines import SegBaselineModule
    from marsvision.training.segmentation import SegmentationModule
    from marsvision.training.semiseg import SemiSegModule

    state = safe_torch_load(checkpoint)
    hparams = state["hyper_parameters"]
    config = MarsvisionModule.config_from_hparams(hparams)
    class_names = list(hparams.get("class_names", []))
    module: MarsvisionModule
    if config.task == "pretrain":
        module = SimCLRModule(config)
    elif config.task == "segmentation" and config.segbaseline.method == "none":
        module = SegmentationModule(config, class_names)
    elif config.task == "segmentation":
        module = SegBaselineModule(config, class_names)
    elif config.task == "semiseg":
        module = SemiSegModule(config, class_names)
    else:
        module = ClassificationModule(
            config, class_names, samples_per_class=hparams.get("samples_per_class"), class_ids=hparams.get("class_ids")
        )
    module.load_state_dict(state["state_dict"])
    module.eval()
    return module, config


def evaluate_checkpoint(target: Path, *, split: str | None = None, data_root: str | None = None) -> dict[str, Any]:
    """Evaluate a run's best checkpoint (or a checkpoint file) on ``split``; writes ``eval-<split>.json``."""
    if target.is_dir():
        best = target / "checkpoints" / "best.ckpt"
        checkpoint = best if best.is_file() else target / runs.LAST_CHECKPOINT
        run_dir: Path | None = target
    else:
        checkpoint, run_dir = target, None
    module, config = load_module(checkpoint)
    if data_root is not None:
        config.data.root = data_root
    dataset, class_names, split_name = build_eval_dataset(config, split)
    evaluation = evaluate_model(module, dataset, config, class_names, run_dir=run_dir, split=split_name, primary=False)
    return {"checkpoint": str(checkpoint), "split": split_name, "metrics": _headline(evaluation["metrics"])}
