"""Readers for the log files of a run directory and a sweep directory (the formats of docs/ARCHITECTURE.md).

Reports and plots read these files only, never live objects. Every problem raises :class:`RunLogError`
whose message starts with the offending file.

Run directory: ``config.yaml``, ``meta.json`` and ``metrics.jsonl`` are required; ``eval.json`` is optional
(a pretraining run has none), as are

* ``qualitative/*.npz``: one panel each, arrays ``image`` ((H, W), (H, W, 3) or (C, H, W)), ``label``
  (H, W) and predictions ``pred`` (named "prediction") and/or ``pred_<name>`` (e.g. ``pred_baseline``,
  ``pred_ours``);
* ``features.npz``: per-pixel features for t-SNE, either ``features`` (N, D) + ``labels`` (N,), or pairs
  ``features_<name>`` + ``labels_<name>`` (e.g. baseline and ours, drawn side by side);
* ``predictions.npz`` (classification): every test image's ``ids``, ``targets``, ``preds``, and thumbnails
  ``error_images`` of the misclassified images at ``error_positions``.

Sweep directory: ``results.json`` (or, failing that, ``results.csv``) is required, ``summary.json`` optional.
``results.json`` is a list of rows; a row is flat like a CSV row, or nests ``params`` / ``metrics`` objects,
which are flattened with "/" (so
``{"metrics": {"recall": {"big rock": 0.4}}}`` becomes ``recall/big rock``). A key is a metric when it (after
an optional ``metrics/``, ``test/`` or ``test_`` prefix) is one of :data:`METRIC_NAMES` or starts with one of
:data:`PER_CLASS_PREFIXES`; every other key is a parameter (the swept values, ``seed``, the run folder).
When a row names its run folder (``run_dir``, relative to the sweep or absolute) and that folder has an
``eval.json``, metrics missing from the row are computed from its confusion matrix.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from marsvision import runfolder
from marsvision.evaluation.metrics import classification_metrics, segmentation_metrics
from marsvision.evaluation.plots import QualitativePanel

RUN_REQUIRED = (runfolder.CONFIG_FILE, runfolder.META_FILE, runfolder.METRICS_FILE)
"""Files every run directory must hold."""

METRIC_NAMES = ("acc", "macc", "facc", "miou", "top1", "loss")
"""Scalar metric names recognised in sweep rows."""

PER_CLASS_PREFIXES = ("recall/", "precision/", "iou/", "per_class_accuracy/", "support/")
"""Prefixes of per-class metric keys in sweep rows (``recall/big rock``)."""

RUN_DIR_KEY = "run_dir"
"""The row key that names a sweep row's run folder."""

TASKS = ("segmentation", "classification")


class RunLogError(ValueError):
    """A run or sweep log file is missing or malformed; the message starts with the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class EvalResult:
    """The content of ``eval.json``: task, split, class names, confusion matrix and stored metrics."""

    task: str
    split: str
    class_names: list[str]
    confusion_matrix: np.ndarray
    metrics: dict[str, Any]

    def computed_metrics(self) -> dict[str, Any]:
        """Metrics recomputed from the confusion matrix (segmentation or classification set)."""
        fn = segmentation_metrics if self.task == "segmentation" else classification_metrics
        return fn(self.confusion_matrix, self.class_names)


@dataclass
class RunLogs:
    """Everything a report needs from one run directory."""

    path: Path
    config_text: str
    config: Any
    meta: dict[str, Any]
    records: list[dict[str, Any]]
    evaluation: EvalResult | None
    qualitative: list[Path] = field(default_factory=list)
    features: Path | None = None

    @property
    def name(self) -> str:
        """The run folder's name."""
        return self.path.name


def read_json(path: Path) -> Any:
    """Parse a JSON file, raising :class:`RunLogError` naming it on failure."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunLogError(path, "required file is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunLogError(path, f"not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file of objects (blank lines skipped); errors name the file and line."""
    if not path.is_file():
        raise RunLogError(path, "required file is missing")
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RunLogError(path, f"line {lineno} is not valid JSON ({exc})") from None
        if not isinstance(rec, dict):
            raise RunLogError(path, f"line {lineno} is not a JSON object")
        records.append(rec)
    return records


def read_eval(path: Path) -> EvalResult:
    """Read and check ``eval.json`` (task, class names and a matching square confusion matrix)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise RunLogError(path, "expected a JSON object")
    for key in ("class_names", "confusion_matrix"):
        if key not in data:
            raise RunLogError(path, f"missing key {key!r}")
    task = data.get("task", "segmentation")
    if task not in TASKS:
        raise RunLogError(path, f"task must be one of {TASKS}, got {task!r}")
    names = data["class_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RunLogError(path, "class_names must be a list of strings")
    try:
        cm = np.asarray(data["confusion_matrix"], dtype=np.int64)
    except (TypeError, ValueError):
        raise RunLogError(path, "confusion_matrix must be a list of lists of integers") from None
    if cm.shape != (len(names), len(names)) or (cm < 0).any():
        raise RunLogError(path, f"confusion_matrix must be non-negative {len(names)}x{len(names)}, got {cm.shape}")
    metrics = data.get("metrics", {})
    return EvalResult(task, str(data.get("split", "")), list(names), cm, metrics if isinstance(metrics, dict) else {})


def load_run(path: str | Path) -> RunLogs:
    """Read a run directory; missing required files raise :class:`RunLogError` naming them."""
    root = Path(path)
    if not root.is_dir():
        raise RunLogError(root, "run directory does not exist")
    for name in RUN_REQUIRED:
        if not (root / name).is_file():
            raise RunLogError(root / name, "required file is missing")
    config_text = (root / runfolder.CONFIG_FILE).read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(config_text)
    except yaml.YAMLError as exc:
        raise RunLogError(root / runfolder.CONFIG_FILE, f"not valid YAML ({exc})") from None
    meta = read_json(root / runfolder.META_FILE)
    if not isinstance(meta, dict):
        raise RunLogError(root / runfolder.META_FILE, "expected a JSON object")
    eval_path = root / runfolder.EVAL_FILE
    evaluation = read_eval(eval_path) if eval_path.is_file() else None
    qdir = root / runfolder.QUALITATIVE_DIR
    qualitative = sorted(qdir.glob("*.npz")) if qdir.is_dir() else []
    features = root / runfolder.FEATURES_FILE
    return RunLogs(
        path=root,
        config_text=config_text,
        config=config,
        meta=meta,
        records=read_jsonl(root / runfolder.METRICS_FILE),
        evaluation=evaluation,
        qualitative=qualitative,
        features=features if features.is_file() else None,
    )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise RunLogError(path, f"cannot read .npz ({exc})") from None


def load_panel(path: Path) -> QualitativePanel:
    """Read one ``qualitative/*.npz`` panel (``image``, ``label``, ``pred`` / ``pred_<name>``)."""
    data = _load_npz(path)
    for key in ("image", "label"):
        if key not in data:
            raise RunLogError(path, f"missing array {key!r} (has {sorted(data)})")
    preds = {
        ("prediction" if k == "pred" else k[len("pred_") :]): v
        for k, v in data.items()
        if k == "pred" or k.startswith("pred_")
    }
    label = data["label"]
    for name, arr in [("label", label), *preds.items()]:
        if arr.ndim != 2:
            raise RunLogError(path, f"{name} must be (H, W), got shape {arr.shape}")
    return QualitativePanel(image=data["image"], label=label, preds=preds, title=path.stem)


@dataclass
class Predictions:
    """A classification run's ``predictions.npz``.

    Each test image's id, class and prediction, and thumbnails (M, side, side, C) uint8 of the misclassified
    images at ``error_positions`` (M,).
    """

    ids: list[str]
    targets: np.ndarray
    preds: np.ndarray
    error_positions: np.ndarray
    error_images: np.ndarray


def load_predictions(path: Path) -> Predictions:
    """Read a classification run's ``predictions.npz``."""
    data = _load_npz(path)
    keys = ("ids", "targets", "preds", "error_positions", "error_images")
    missing = [k for k in keys if k not in data]
    if missing:
        raise RunLogError(path, f"missing arrays {missing} (has {sorted(data)})")
    if not len(data["ids"]) == len(data["targets"]) == len(data["preds"]):
        raise RunLogError(path, "ids, targets and preds differ in length")
    if len(data["error_positions"]) != len(data["error_images"]):
        raise RunLogError(path, "error_positions and error_images differ in length")
    return Predictions(
        [str(i) for i in data["ids"]], data["targets"], data["preds"], data["error_positions"], data["error_images"]
    )


def load_features(path: Path, default_name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``features.npz`` into ``{name: (features, labels)}`` (see the module docstring)."""
    data = _load_npz(path)
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "features" in data:
        if "labels" not in data:
            raise RunLogError(path, "has 'features' but no 'labels'")
        sets[default_name] = (data["features"], data["labels"])
    for key in sorted(data):
        if key.startswith("features_"):
            name = key[len("features_") :]
            if f"labels_{name}" not in data:
                raise RunLogError(path, f"has {key!r} but no 'labels_{name}'")
            sets[name] = (data[key], data[f"labels_{name}"])
    if not sets:
        raise RunLogError(path, f"no 'features' or 'features_<name>' arrays (has {sorted(data)})")
    return sets


# --------------------------------------------------------------------------------------------- sweeps


@dataclass
class SweepLogs:
    """Rows of a sweep (parameters and metrics kept apart), the run folders, and ``summary.json`` if any."""

    path: Path
    params: list[dict[str, Any]]
    metrics: list[dict[str, float]]
    run_dirs: list[Path | None]
    summary: Any | None

    @property
    def name(self) -> str:
        """The sweep folder's name."""
        return self.path.name


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


def _strip_prefixes(key: str) -> str:
    for prefix in ("metrics/", "metrics.", "test/", "test_"):
        key = key.removeprefix(prefix)
    return key


def metric_key(key: str) -> str | None:
    """Return the metric name a sweep-row key denotes (prefix stripped), or None for a parameter."""
    key = _strip_prefixes(key)
    if key in METRIC_NAMES or key.startswith(PER_CLASS_PREFIXES):
        return key
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _csv_value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _read_rows(root: Path) -> list[dict[str, Any]]:
    rj, rc = root / runfolder.RESULTS_JSON, root / runfolder.RESULTS_CSV
    if rj.is_file():
        data = read_json(rj)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise RunLogError(rj, "expected a list of row objects")
        return [dict(r) for r in data]
    if rc.is_file():
        with rc.open(newline="", encoding="utf-8") as handle:
            return [{k: _csv_value(v) for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]
    raise RunLogError(rj, "required file is missing (and no results.csv either)")


def _flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in _flatten(metrics).items():
        number = _number(value)
        if number is not None:
            out[_strip_prefixes(key)] = number
    return out


def load_sweep(path: str | Path) -> SweepLogs:
    """Read a sweep directory (see the module docstring for the row format)."""
    root = Path(path)
    if not root.is_dir():
        raise RunLogError(root, "sweep directory does not exist")
    rows = _read_rows(root)
    if not rows:
        raise RunLogError(root / runfolder.RESULTS_JSON, "holds no runs")
    all_params: list[dict[str, Any]] = []
    all_metrics: list[dict[str, float]] = []
    run_dirs: list[Path | None] = []
    for row in rows:
        nested = row.pop("metrics") if isinstance(row.get("metrics"), Mapping) else {}
        flat = _flatten(row)
        params: dict[str, Any] = {}
        metrics: dict[str, float] = _flat_metrics(nested)
        for key, value in flat.items():
            key = key.removeprefix("params/")
            name = metric_key(key)
            number = _number(value)
            if name is not None:
                if number is not None:
                    metrics[name] = number
            else:
                params[key] = value
        named = params.get(RUN_DIR_KEY)
        run_dir = root / named if isinstance(named, str) and named else None  # an absolute name replaces root
        if run_dir is not None and not run_dir.is_dir():
            run_dir = None
        if run_dir is not None and (run_dir / runfolder.EVAL_FILE).is_file():
            for key, value in _flat_metrics(read_eval(run_dir / runfolder.EVAL_FILE).computed_metrics()).items():
                metrics.setdefault(key, value)
        all_params.append(params)
        all_metrics.append(metrics)
        run_dirs.append(run_dir)
    summary_path = root / runfolder.SUMMARY_JSON
    summary = read_json(summary_path) if summary_path.is_file() else None
    return SweepLogs(root, all_params, all_metrics, run_dirs, summary)


def is_sweep_dir(path: str | Path) -> bool:
    """Tell whether ``path`` holds sweep files (``results.json``, ``results.csv`` or ``summary.json``)."""
    return runfolder.is_sweep_dir(Path(path))
