"""The headline metrics as people read them: their order, their labels, and how a fraction is shown in percent.

Reports, figures, the command line's result tables and the per-epoch progress lines take the names from here,
so a metric is called the same everywhere. Light on purpose (no numpy, no matplotlib): the command line imports
it before anything heavy.
"""

from __future__ import annotations

import math

SCALAR_METRICS = ("acc", "macc", "facc", "miou", "top1")
"""Headline metrics, in the order reports show them (fractions, shown in percent)."""

FRACTION_METRICS = frozenset(SCALAR_METRICS)
"""Metric names whose values are fractions in [0, 1]; tables and learning curves show them in percent."""

BIG_ROCK_RECALL = "recall/big rock"
METRIC_LABELS = {
    "acc": "ACC (pixel accuracy)",
    "macc": "MACC (mean class recall)",
    "facc": "FACC (frequency-weighted IoU)",
    "miou": "mIoU",
    "top1": "top-1 accuracy",
    BIG_ROCK_RECALL: "big-rock recall",
}


def is_fraction_metric(name: str) -> bool:
    """Whether a logged metric (``val/acc``, ``acc``, ``recall/big rock``) is a fraction shown in percent."""
    return name.rsplit("/", 1)[-1] in FRACTION_METRICS or name == BIG_ROCK_RECALL


def percent(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage without the sign (``0.3712`` → ``37.12``); ``n/a`` for None or NaN."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{100.0 * value:.{digits}f}"
