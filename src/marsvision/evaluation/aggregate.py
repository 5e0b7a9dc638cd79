"""Mean ± std over seeds of a sweep's runs, grouped by setting; label-fraction curves for the plots.

The std is the sample standard deviation (``ddof=1``) over the seeds of one setting, 0 for a single seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marsvision.evaluation.plots import Series
from marsvision.evaluation.runlogs import RUN_DIR_KEY, SweepLogs

NOT_SWEPT = frozenset({"seed", "name", RUN_DIR_KEY})
"""Parameter keys that never define a setting."""


@dataclass(frozen=True)
class Stat:
    """Mean, standard deviation and count of one metric over the seeds of one setting."""

    mean: float
    std: float
    n: int


def mean_std(values: Sequence[float]) -> Stat:
    """Mean and sample std (``ddof=1``; 0 for one value) of the finite values; NaN mean when none."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size))


def swept_keys(params: Sequence[dict[str, Any]]) -> list[str]:
    """Parameter keys (other than seed and the run folder) whose values differ between rows, in order."""
    keys: list[str] = []
    for row in params:
        keys.extend(k for k in row if k not in keys and k not in NOT_SWEPT)
    return [k for k in keys if len({repr(row.get(k)) for row in params}) > 1]


def fraction_key(keys: Sequence[str]) -> str | None:
    """Return the swept key holding the label fraction: the first whose last part ends with "fraction"."""
    for key in keys:
        if key.replace(".", "/").split("/")[-1].lower().endswith("fraction"):
            return key
    return None


def _is_weights_key(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == "weights"


def value_label(key: str, value: Any) -> str:
    """A swept value as a reader names it: initial weights are "random init" or "pretrained (<source>)".

    The source is the run name of a ``latest:<name>`` reference, else the folder (or stem) of the weights file;
    every other value is its text.
    """
    if not _is_weights_key(key):
        return str(value)
    text = "" if value is None else str(value)
    if text.lower() in ("", "none", "null"):
        return "random init"
    path = Path(text)
    source = text.removeprefix("latest:") if text.startswith("latest:") else path.parent.name or path.stem
    return f"pretrained ({source})"


def setting_label(row: dict[str, Any], keys: Sequence[str]) -> str:
    """Name a setting: the value for one key, ``k=v, ...`` for several, "all" for none (see :func:`value_label`)."""
    if not keys:
        return "all"
    if len(keys) == 1:
        return value_label(keys[0], row.get(keys[0]))
    return ", ".join(
        value_label(k, row.get(k)) if _is_weights_key(k) else f"{k}={value_label(k, row.get(k))}" for k in keys
    )


def group_stats(sweep: SweepLogs, metric: str, keys: Sequence[str]) -> dict[tuple[str, ...], Stat]:
    """Return ``{setting values (as strings): Stat}`` of ``metric`` grouped by ``keys``, in order."""
    groups: dict[tuple[str, ...], list[float]] = {}
    for params, metrics in zip(sweep.params, sweep.metrics, strict=True):
        key = tuple(value_label(k, params.get(k)) for k in keys)
        groups.setdefault(key, [])
        if metric in metrics:
            groups[key].append(metrics[metric])
    return {k: mean_std(v) for k, v in groups.items()}


def as_fraction(value: Any) -> float | None:
    """A swept fraction value as a float (``'5%'`` → 5.0), or None when it is not a number."""
    try:
        return float(str(value).rstrip("%"))
    except ValueError:
        return None


def fraction_series(sweep: SweepLogs, metric: str) -> list[Series]:
    """One :class:`Series` (fraction, mean, std) per method for ``metric``; empty when not a fraction sweep.

    Methods are the settings of the swept keys other than the fraction. Fractions above 1 are read as
    percent (``5`` → 0.05).
    """
    keys = swept_keys(sweep.params)
    fkey = fraction_key(keys)
    if fkey is None or not any(metric in m for m in sweep.metrics):
        return []
    method_keys = [k for k in keys if k != fkey]
    fractions = [as_fraction(p.get(fkey)) for p in sweep.params]
    if any(f is None for f in fractions):
        return []
    percent = max(f for f in fractions if f is not None) > 1.0
    by_method: dict[str, dict[float, list[float]]] = {}
    for params, metrics, frac in zip(sweep.params, sweep.metrics, fractions, strict=True):
        assert frac is not None
        points = by_method.setdefault(setting_label(params, method_keys), {})
        if metric in metrics:
            points.setdefault(frac / 100.0 if percent else frac, []).append(metrics[metric])
    series = []
    for label, points in by_method.items():
        xs = sorted(points)
        stats = [mean_std(points[x]) for x in xs]
        if xs:
            series.append(Series(label, xs, [s.mean for s in stats], [s.std for s in stats]))
    return series
