"""Metrics as pure functions of one confusion matrix (rows = true class, columns = predicted class).

All values are fractions in [0, 1] (reports multiply by 100). Conventions for empty classes, chosen so that no
metric ever divides by zero:

* per-class recall (= per-class accuracy) is NaN for a class absent from the target (empty row);
* per-class precision is NaN for a class never predicted (empty column);
* per-class IoU is NaN for a class absent from both target and prediction (empty row and column); a class
  predicted but absent from the target has IoU 0;
* MACC averages recall over the classes present in the target; mIoU averages IoU over the classes present
  in the target or the prediction (the NaN classes above are excluded, as torchmetrics'
  ``MulticlassJaccardIndex`` does); FACC = Σ_c freq_c · IoU_c with freq_c = row_c / total, so absent
  classes weigh 0;
* on an all-ignored (empty) matrix every aggregate is NaN.

The ``*_metrics`` dict builders return JSON-able values: NaN becomes ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

ArrayLike = Tensor | np.ndarray | Sequence[Sequence[int]] | Sequence[Sequence[float]]


def as_confusion(cm: ArrayLike) -> Tensor:
    """Return ``cm`` as a float64 CPU tensor after checking it is a square, non-negative, finite matrix."""
    mat = torch.as_tensor(np.asarray(cm.detach().cpu() if isinstance(cm, Tensor) else cm), dtype=torch.float64)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] == 0:
        raise ValueError(f"confusion matrix must be square (K, K) with K >= 1, got shape {tuple(mat.shape)}")
    if not torch.isfinite(mat).all() or (mat < 0).any():
        raise ValueError("confusion matrix entries must be finite and non-negative")
    return mat


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """Elementwise ``num / den`` with NaN where ``den == 0`` (no division by zero is performed)."""
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.full_like(num, math.nan))


def support(cm: ArrayLike) -> Tensor:
    """Labeled count per true class (row sums), float64 ``(K,)``."""
    return as_confusion(cm).sum(dim=1)


def class_frequencies(cm: ArrayLike) -> Tensor:
    """Share of labeled pixels per true class (row sums / total), zeros for an empty matrix."""
    mat = as_confusion(cm)
    rows = mat.sum(dim=1)
    total = rows.sum()
    return rows / total if total > 0 else torch.zeros_like(rows)


def overall_accuracy(cm: ArrayLike) -> float:
    """ACC / top-1 accuracy: trace / total; NaN for an empty matrix."""
    mat = as_confusion(cm)
    return float(_ratio(mat.diagonal().sum(), mat.sum()))


def per_class_recall(cm: ArrayLike) -> Tensor:
    """Recall (per-class accuracy) ``cm[c, c] / row_c``; NaN for classes absent from the target."""
    mat = as_confusion(cm)
    return _ratio(mat.diagonal(), mat.sum(dim=1))


def per_class_precision(cm: ArrayLike) -> Tensor:
    """Precision ``cm[c, c] / col_c``; NaN for classes never predicted."""
    mat = as_confusion(cm)
    return _ratio(mat.diagonal(), mat.sum(dim=0))


def per_class_iou(cm: ArrayLike) -> Tensor:
    """IoU ``cm[c, c] / (row_c + col_c − cm[c, c])``; NaN for classes absent from target and prediction."""
    mat = as_confusion(cm)
    tp = mat.diagonal()
    return _ratio(tp, mat.sum(dim=1) + mat.sum(dim=0) - tp)


def _nanmean(values: Tensor) -> float:
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if kept.numel() > 0 else math.nan


def mean_accuracy(cm: ArrayLike) -> float:
    """MACC: mean per-class recall over the classes present in the target (balanced accuracy)."""
    return _nanmean(per_class_recall(cm))


def mean_iou(cm: ArrayLike) -> float:
    """MIoU: mean IoU over classes present in the target or the prediction."""
    return _nanmean(per_class_iou(cm))


def frequency_weighted_iou(cm: ArrayLike) -> float:
    """FACC: ``Σ_c freq_c · IoU_c`` with ``freq_c`` = share of labeled pixels of class c; NaN if empty."""
    mat = as_confusion(cm)
    if mat.sum() == 0:
        return math.nan
    freq = class_frequencies(mat)
    iou = torch.nan_to_num(per_class_iou(mat), nan=0.0)  # NaN IoU only where freq_c == 0
    return float((freq * iou).sum())


def row_normalized(cm: ArrayLike) -> Tensor:
    """Confusion matrix in percent of each true class (rows sum to 100); empty rows stay all zero."""
    mat = as_confusion(cm)
    rows = mat.sum(dim=1, keepdim=True)
    return torch.nan_to_num(_ratio(100.0 * mat, rows.expand_as(mat)), nan=0.0)


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _by_name(values: Tensor, class_names: Sequence[str]) -> dict[str, float | None]:
    return {name: _json_float(float(v)) for name, v in zip(class_names, values.tolist(), strict=True)}


def _check_names(mat: Tensor, class_names: Sequence[str]) -> None:
    if len(class_names) != mat.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {mat.shape[0]}x{mat.shape[0]} confusion matrix")


def segmentation_metrics(cm: ArrayLike, class_names: Sequence[str]) -> dict[str, Any]:
    """ACC, MACC, FACC, mIoU and per-class recall/precision/IoU/support (keyed by class name), JSON-able.

    Keys: ``acc, macc, facc, miou, total, recall, precision, iou, support``; NaN values are ``None``.
    """
    mat = as_confusion(cm)
    _check_names(mat, class_names)
    return {
        "acc": _json_float(overall_accuracy(mat)),
        "macc": _json_float(mean_accuracy(mat)),
        "facc": _json_float(frequency_weighted_iou(mat)),
        "miou": _json_float(mean_iou(mat)),
        "total": int(mat.sum()),
        "recall": _by_name(per_class_recall(mat), class_names),
        "precision": _by_name(per_class_precision(mat), class_names),
        "iou": _by_name(per_class_iou(mat), class_names),
        "support": {n: int(v) for n, v in zip(class_names, support(mat).tolist(), strict=True)},
    }


def classification_metrics(cm: ArrayLike, class_names: Sequence[str]) -> dict[str, Any]:
    """Top-1, mean per-class accuracy and per-class accuracy/precision/support (keyed by name), JSON-able.

    Keys: ``top1, macc, total, per_class_accuracy, precision, support``; NaN values are ``None``.
    """
    mat = as_confusion(cm)
    _check_names(mat, class_names)
    return {
        "top1": _json_float(overall_accuracy(mat)),
        "macc": _json_float(mean_accuracy(mat)),
        "total": int(mat.sum()),
        "per_class_accuracy": _by_name(per_class_recall(mat), class_names),
        "precision": _by_name(per_class_precision(mat), class_names),
        "support": {n: int(v) for n, v in zip(class_names, support(mat).tolist(), strict=True)},
    }
