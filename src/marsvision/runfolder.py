"""The files of a run folder and a sweep folder, named once (docs/ARCHITECTURE.md, "A run directory").

Training writes these files, evaluation and reports read them, the CLI points at them: every package imports
the names from here, at the bottom floor next to :mod:`marsvision.atomic`, so no file name is spelled twice.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.yaml"
"""The resolved config of the run."""
META_FILE = "meta.json"
"""Provenance: git commit, versions, host, command line, and what ``latest:`` references resolved to."""
METRICS_FILE = "metrics.jsonl"
"""One JSON object per epoch and split, and one per evaluation."""
EVAL_FILE = "eval.json"
"""The run's own held-out evaluation (confusion matrix and metrics)."""
RESULT_FILE = "result.json"
"""What the training command returned (run dir, checkpoint, headline metrics, wall time)."""
FEATURES_FILE = "features.npz"
"""Sampled per-pixel features and labels of the test set, for the t-SNE figure."""
PREDICTIONS_FILE = "predictions.npz"
"""Classification: every test image's id, class and prediction, and small copies of the misclassified images
(paper 002 Figs 9-10)."""
QUALITATIVE_DIR = "qualitative"
"""A few test images with label and prediction, for the qualitative panels."""
ENCODER_FILE = "encoder.pt"
"""The pretrained encoder a pretraining run leaves (``model.weights=latest:<name>`` finds it)."""
FIGURES_DIR = "figures"
"""PNG figures written by ``marsvision report``."""
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT_NAME = "last"
BEST_CHECKPOINT_NAME = "best"
CHECKPOINT_SUFFIX = ".ckpt"
FAILED_FILE = "FAILED"
"""Written into a run folder whose training raised: ``latest:`` and reports skip such runs."""

RESULTS_JSON = "results.json"
"""Sweep folder: one row per (grid point, seed)."""
RESULTS_CSV = "results.csv"
SUMMARY_JSON = "summary.json"
"""Sweep folder: mean ± sample std per grid point over seeds."""


def eval_file(split: str | None = None, tta: str = "none") -> str:
    """``eval.json`` for the run's own test evaluation, ``eval-<split>[-tta-<mode>].json`` for a later one.

    A later ``evaluate --split S`` writes ``eval-S.json``; with test-time augmentation ``eval-S-tta-flip.json``,
    beside the plain one.
    """
    if split is None:
        return EVAL_FILE
    return f"eval-{split}.json" if tta == "none" else f"eval-{split}-tta-{tta}.json"


def last_checkpoint(run_dir: Path) -> Path:
    """The checkpoint written after every epoch (what ``--resume`` continues from)."""
    return run_dir / CHECKPOINT_DIR / f"{LAST_CHECKPOINT_NAME}{CHECKPOINT_SUFFIX}"


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run selected on validation (``best.ckpt``), else its last one."""
    best = run_dir / CHECKPOINT_DIR / f"{BEST_CHECKPOINT_NAME}{CHECKPOINT_SUFFIX}"
    return best if best.is_file() else last_checkpoint(run_dir)


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` looks like a sweep folder (it holds the sweep's rows or summary)."""
    return any((path / name).is_file() for name in (RESULTS_JSON, RESULTS_CSV, SUMMARY_JSON))
