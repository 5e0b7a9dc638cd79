"""What a command's result looks like to a person: short aligned tables, fractions in percent, no Python reprs.

``--json`` prints the result dict itself; without it the command line prints :func:`render` of the same dict.
Known parts get their own layout (a run's test metrics under the name and size of the split they were measured
on, a sweep's summary as one row per setting, a dataset's splits as one row each); everything else is a
``label  value`` line, nested mappings indented, lists joined, empty values said in words and None left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marsvision.evaluation.metric_names import METRIC_LABELS, SCALAR_METRICS, is_fraction_metric, percent

INDENT = "  "
LONG_LIST = 100
"""A list whose items add up to more characters than this is shown one item per line."""
SPLIT_DESCRIPTIONS = {
    "holdout": "held-out test set",
    "chronological-late": "test set (the later images by acquisition time)",
}
"""How ``data.test_holdout`` and ``data.chronological`` test sets are named; an official split keeps its name."""
SHARE_KEYS = frozenset({"pixel_share", "true_pixel_share"})
"""Result keys whose values are shares in [0, 1], shown in percent like the metrics."""
LABELS = {
    "unlisted": "unlisted images (in no split list: unlabeled)",
    "unlisted_images": "unlisted images (in no split list: unlabeled)",
    "unlabeled_images": "unlabeled images (no label in any split)",
    "missing_images": "labels without an image (skipped)",
    "unpaired_images": "images without a label (skipped)",
}
"""Result keys whose plain name would leave a reader guessing."""


def split_title(split: str, images: int | None) -> str:
    """``test split (200 images)``, ``held-out test set (200 images)``: which images a metric was measured on."""
    name = SPLIT_DESCRIPTIONS.get(split, f"{split} split")
    return name if images is None else f"{name} ({images:,} images)"


def _number(key: str, value: float | int) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if is_fraction_metric(key) or key in SHARE_KEYS:
        return f"{percent(value)} %"
    if key.endswith("_s"):
        return f"{value:.1f} s"
    return f"{value:.4g}"


def _label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    if key.endswith("_s"):
        key = key[:-2]
    return str(key).replace("_", " ")


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, (int, float)):
        return _number(key, value)
    return str(value)


def _lines(result: Mapping[str, Any], depth: int = 0) -> list[str]:
    """``label  value`` lines of a mapping, labels aligned per level; mappings and lists of mappings nest."""
    shown = {k: v for k, v in result.items() if v is not None}
    width = max((len(_label(k)) for k in shown), default=0)
    pad = INDENT * depth
    lines: list[str] = []
    for key, value in shown.items():
        label = _label(key)
        if isinstance(value, Mapping):
            if not value:
                lines.append(f"{pad}{label:<{width}}  none")
                continue
            lines.append(f"{pad}{label}")
            lines.extend(_lines({str(k): v for k, v in value.items()}, depth + 1))
        elif isinstance(value, Sequence) and not isinstance(value, str):
            if not value:
                lines.append(f"{pad}{label:<{width}}  none")
            elif all(isinstance(item, Mapping) for item in value):
                lines.append(f"{pad}{label} ({len(value)})")
                lines.extend(f"{pad}{INDENT}{_item(item)}" for item in value)
            elif sum(len(str(item)) for item in value) > LONG_LIST:
                lines.append(f"{pad}{label} ({len(value)})")
                lines.extend(f"{pad}{INDENT}{_scalar(key, item)}" for item in value)
            else:
                lines.append(f"{pad}{label:<{width}}  {', '.join(_scalar(key, item) for item in value)}")
        else:
            lines.append(f"{pad}{label:<{width}}  {_scalar(key, value)}")
    return lines


def _item(item: Mapping[str, Any]) -> str:
    """One list entry on one line: ``path: error`` for a failure, else ``key value, key value``."""
    if set(item) == {"path", "error"}:
        return f"{item['path']}: {item['error']}"
    return ", ".join(f"{_label(k)} {_scalar(k, v)}" for k, v in item.items() if v is not None)


def metric_lines(metrics: Mapping[str, Any], task: str | None) -> list[str]:
    """The headline metrics in percent with their report labels, then how many labeled samples they count."""
    rows = [(METRIC_LABELS[name], f"{percent(metrics.get(name))} %") for name in SCALAR_METRICS if name in metrics]
    rows += [(_label(k), _scalar(k, v)) for k, v in metrics.items() if k not in SCALAR_METRICS and k != "total"]
    if "total" in metrics:
        what = "labeled images" if task == "classification" else "labeled pixels"
        rows.append((what, f"{metrics['total']:,}"))
    width = max((len(label) for label, _ in rows), default=0)
    return [f"{INDENT}{label:<{width}}  {value}" for label, value in rows]


def _summary_table(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """A sweep's summary: one row per setting, its number of seeds, mean (± std over seeds when several)."""
    if not summary:
        return ["summary  no finished runs"]
    metrics = [m for m in SCALAR_METRICS if any(f"{m}_mean" in row for row in summary)]
    header = ["setting", "seeds", *(f"{m} %" for m in metrics)]
    rows = []
    for row in summary:
        setting = ", ".join(
            f"{k.rsplit('.', 1)[-1]}={'none' if v is None else v}"
            for k, v in row.items()
            if k != "seeds" and not k.endswith(("_mean", "_std"))
        )
        cells = [setting, str(len(row["seeds"]))]
        for m in metrics:
            mean, std = row.get(f"{m}_mean"), row.get(f"{m}_std")
            several = len(row["seeds"]) > 1 and std is not None
            cells.append(percent(mean) + (f" ± {percent(std)}" if several else ""))
        rows.append(cells)
    return table(header, rows)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned text columns separated by two spaces (a short row leaves its last columns empty)."""
    every = [header, *rows]
    widths = [max(len(r[i]) for r in every if i < len(r)) for i in range(len(header))]
    return ["  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=False)).rstrip() for r in every]


def _dataset_table(splits: Mapping[str, Any]) -> list[str]:
    """``data inspect``: one row per split with its image count and the share of labeled pixels per class."""
    names: list[str] = []
    for entry in splits.values():
        names += [n for n in entry.get("pixel_share", entry.get("images_per_class", {})) if n not in names]
    shares = any("pixel_share" in entry for entry in splits.values())
    header = ["split", "images", *names]
    rows = []
    for split, entry in splits.items():
        if "error" in entry:
            continue  # said below the table, where a long message does not stretch a column
        per_class = entry.get("pixel_share") if shares else entry.get("images_per_class", {})
        values = [
            "" if per_class is None or n not in per_class else _share_or_count(per_class[n], shares) for n in names
        ]
        rows.append([split, f"{entry.get('count', 0):,}", *values])
    note = "share of labeled pixels per class" if shares else "images per class"
    notes = [f"{INDENT}{split}: unreadable ({entry['error']})" for split, entry in splits.items() if "error" in entry]
    notes += [
        f"{INDENT}{split}: {entry[key]:,} {LABELS[key]}"
        for split, entry in splits.items()
        for key in ("missing_images", "unpaired_images")
        if entry.get(key)
    ]
    return [f"splits ({note})", *(INDENT + line for line in table(header, rows)), *notes]


def _share_or_count(value: float | int, share: bool) -> str:
    return f"{percent(value, 1)} %" if share else f"{value:,}"


def render(result: Mapping[str, Any]) -> str:
    """The human form of a command's result dict (see the module docstring)."""
    rest = dict(result)
    lines: list[str] = []
    metrics = rest.pop("metrics", None)
    split = rest.pop("split", None)
    images = rest.pop("split_images", None)
    summary = rest.pop("summary", None)
    splits = rest.pop("splits", None) if "format" in rest else None
    closing = {"wall_time_s": rest.pop("wall_time_s")} if "wall_time_s" in rest else {}
    lines += _lines(rest)
    if isinstance(splits, Mapping):
        lines += _dataset_table(splits)
    if isinstance(metrics, Mapping) and metrics:
        lines.append(split_title(str(split), images) if split is not None else "metrics")
        lines += metric_lines(metrics, result.get("task"))
    if summary is not None:
        lines += _summary_table(summary)
    lines += _lines(closing)
    return "\n".join(lines)
