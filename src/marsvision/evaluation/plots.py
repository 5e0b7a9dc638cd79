"""Figures as PNG files: each function draws one figure, writes it atomically and returns its path.

Matplotlib is used through ``matplotlib.figure.Figure`` with the Agg canvas only (no pyplot, no global
state), so plotting works headless and from several threads. Class colours come from
:mod:`marsvision.evaluation.palette`. Fractions in [0, 1] are drawn as percent where the axis says "%".

Paper figures: Method A Fig. 3 (:func:`plot_label_efficiency`), Figs 4-5 (:func:`plot_confusion_matrix`),
Fig. 6 (:func:`plot_class_distribution`; :func:`plot_dataset_classes` for ``data inspect``), Fig. 7
(:func:`plot_class_metric_vs_fraction`), Figs 8-9 and B-seg Fig. 13 (:func:`plot_qualitative`); B-seg Fig. 11
(:func:`plot_learning_curves`), Fig. 12 (:func:`plot_tsne`); B-cls Fig. 8 (:func:`plot_per_class`), Figs 9-10
(:func:`plot_image_grid`).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from marsvision.atomic import atomic_write_bytes
from marsvision.data.classes import IGNORE_INDEX
from marsvision.evaluation.metric_names import FRACTION_METRICS
from marsvision.evaluation.metrics import ArrayLike, as_confusion, class_frequencies, row_normalized
from marsvision.evaluation.palette import IGNORE_COLOR, colorize, generic_palette, palette_for
from marsvision.progress import progress

_DPI = 110


@dataclass(frozen=True)
class Series:
    """One line of a line plot: ``y`` (± ``yerr``) at ``x``; values are fractions unless stated otherwise."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    yerr: Sequence[float] | None = None


@dataclass(frozen=True)
class QualitativePanel:
    """One row of a qualitative figure: the image, its ground truth and named predictions.

    ``image`` is ``(H, W)``, ``(H, W, 3)`` or ``(C, H, W)`` (float in [0, 1] or uint8); label maps are
    ``(H, W)`` integers with ``IGNORE_INDEX`` for unlabeled pixels.
    """

    image: np.ndarray
    label: np.ndarray
    preds: Mapping[str, np.ndarray] = field(default_factory=dict)
    title: str = ""


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return atomic_write_bytes(path, buf.getvalue())


def _pct(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else 100.0 * float(v) for v in values], dtype=float)


PERCENT_TOP = 105.0
"""Upper limit of a percentage axis: 100 % and room for the markers."""


def _percent_axis(ax: Any, highest: float) -> None:
    """A percentage axis from 0 (error bars never push it below) to a little above the highest value drawn."""
    top = PERCENT_TOP if not math.isfinite(highest) else min(PERCENT_TOP, max(1.0, 1.08 * highest))
    ax.set_ylim(0.0, top)


def plot_metric_vs_fraction(
    series: Sequence[Series],
    path: str | Path,
    *,
    ylabel: str,
    title: str = "",
    log_x: bool = True,
) -> Path:
    """Draw a metric (%) against the label fraction (%, log axis), one line per method with ± error bars.

    The metric axis starts at 0 % and ends a little above the highest mean + std (at most 105 %).
    """
    if not series:
        raise ValueError("no series to plot")
    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    ticks: set[float] = set()
    highest = -math.inf
    for s in series:
        x = _pct(s.x)
        y = _pct(s.y)
        order = np.argsort(x)
        yerr = None if s.yerr is None else _pct(s.yerr)[order]
        ax.errorbar(x[order], y[order], yerr=yerr, marker="o", capsize=4, label=s.label)
        ticks.update(float(v) for v in x)
        tops = y[order] + (0.0 if yerr is None else np.nan_to_num(yerr))
        if np.isfinite(tops).any():
            highest = max(highest, float(np.nanmax(tops)))
    if log_x and all(t > 0 for t in ticks):
        ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), labels=[f"{t:g}" for t in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel("labeled data (%)")
    _percent_axis(ax, highest)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_label_efficiency(series: Sequence[Series], path: str | Path, *, metric: str = "pixel accuracy") -> Path:
    """Fig. 3: test ``metric`` vs label fraction for several methods (mean ± std over seeds)."""
    return plot_metric_vs_fraction(series, path, ylabel=f"test {metric} (%)", title=f"{metric} vs labeled data")


def plot_class_metric_vs_fraction(
    series: Sequence[Series], path: str | Path, *, class_name: str = "big rock", metric: str = "recall"
) -> Path:
    """Fig. 7: one class's ``metric`` (e.g. big-rock recall) vs label fraction for several methods."""
    return plot_metric_vs_fraction(
        series, path, ylabel=f"{class_name} {metric} (%)", title=f"{class_name} {metric} vs labeled data"
    )


def plot_confusion_matrix(
    cm: ArrayLike, class_names: Sequence[str], path: str | Path, *, title: str = "confusion matrix"
) -> Path:
    """Figs 4-5: heatmap of the confusion matrix normalised per true class (rows sum to 100 %)."""
    mat = as_confusion(cm)
    if len(class_names) != mat.shape[0]:
        raise ValueError(f"{len(class_names)} class names for a {mat.shape[0]}x{mat.shape[0]} matrix")
    norm = row_normalized(mat).numpy()
    k = len(class_names)
    side = max(4.0, 0.6 * k + 2.5)
    fig = _new_figure(side + 1.0, side)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=100.0)
    fig.colorbar(im, ax=ax, label="% of true class", shrink=0.8)
    rows = mat.sum(dim=1).tolist()
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=[f"{n} (n={int(r):,})" for n, r in zip(class_names, rows, strict=True)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                color = "white" if norm[i, j] > 55 else "black"
                ax.text(j, i, f"{norm[i, j]:.1f}", ha="center", va="center", color=color, fontsize=8)
    return _save(fig, path)


def _class_bars(ax: Any, values: np.ndarray, class_names: Sequence[str], *, percent: bool) -> None:
    """Bars of one value per class in the class colours, each labelled with its value."""
    colors = palette_for(class_names) / 255.0
    bars = ax.bar(range(len(class_names)), values, color=colors, edgecolor="black", linewidth=0.5)
    ax.bar_label(bars, labels=[f"{v:.1f}" if percent else f"{int(v):,}" for v in values], fontsize=8)
    ax.set_xticks(range(len(class_names)), labels=list(class_names), rotation=45, ha="right")
    ax.set_ylim(bottom=0)


def plot_class_distribution(
    counts: Sequence[float], class_names: Sequence[str], path: str | Path, *, title: str = "class pixel share"
) -> Path:
    """Fig. 6: share of labeled pixels per class (bars in the class colours, labelled in percent)."""
    counts_arr = np.asarray(counts, dtype=float)
    if counts_arr.shape != (len(class_names),):
        raise ValueError(f"{counts_arr.shape[0]} counts for {len(class_names)} class names")
    share = 100.0 * class_frequencies(np.diag(counts_arr)).numpy()
    fig = _new_figure(max(5.0, 0.55 * len(class_names) + 2.0), 4.0)
    ax = fig.add_subplot()
    _class_bars(ax, share, class_names, percent=True)
    ax.set_ylabel("labeled pixels (%)")
    ax.set_title(f"{title} (total {int(counts_arr.sum()):,})")
    return _save(fig, path)


def plot_dataset_classes(info: Mapping[str, Any], path: str | Path) -> Path:
    """``data inspect --plot``: the class distribution of every split of a dataset, one panel each.

    ``info`` is what :func:`marsvision.data.inspect.inspect_dataset` returns: segmentation splits show the share
    of labeled pixels per class (Fig. 6), classification splits the number of images per class, in the class
    colours of overlays and reports; a split that could not be read keeps its panel, which says why.
    """
    counted = [entry["images_per_class"] for entry in info["splits"].values() if "images_per_class" in entry]
    if not counted:
        raise ValueError("info holds no split with class statistics")
    names = max((list(classes) for classes in counted), key=len)
    fig = _new_figure(max(5.0, 0.5 * len(names) + 2.0), 3.2 * len(info["splits"]))
    for index, (split, entry) in enumerate(info["splits"].items(), start=1):
        ax = fig.add_subplot(len(info["splits"]), 1, index)
        ax.set_title(f"{info['format']} — {split} ({entry.get('count', 0):,} images)")
        if "images_per_class" not in entry:
            ax.set_axis_off()
            why = entry.get("error", "no class statistics")
            ax.text(0.5, 0.5, textwrap.fill(f"not counted: {why}", 70), ha="center", va="center", fontsize=8)
            continue
        segmentation = "pixel_share" in entry
        values = entry["pixel_share"] if segmentation else entry["images_per_class"]
        heights = np.array([values.get(n, 0) for n in names], dtype=float) * (100.0 if segmentation else 1.0)
        _class_bars(ax, heights, names, percent=segmentation)
        ax.set_ylabel("labeled pixels (%)" if segmentation else "images")
    return _save(fig, path)


def plot_per_class(
    groups: Mapping[str, Mapping[str, float | None]],
    path: str | Path,
    *,
    ylabel: str = "per-class accuracy (%)",
    title: str = "",
) -> Path:
    """B-cls Fig. 8 (and per-class IoU/recall): grouped bars, one group per class, one bar per method.

    ``groups`` maps a method name to ``{class name: fraction or None}``; ``None`` (class absent) is drawn
    as an empty slot marked "n/a". With one method the bars take the class colours.
    """
    if not groups:
        raise ValueError("no values to plot")
    names: list[str] = []
    for values in groups.values():
        names.extend(n for n in values if n not in names)
    n_methods = len(groups)
    width = 0.8 / n_methods
    fig = _new_figure(max(6.0, 0.45 * len(names) * max(1, n_methods / 1.5) + 2.0), 4.4)
    ax = fig.add_subplot()
    x = np.arange(len(names), dtype=float)
    method_colors = generic_palette(n_methods) / 255.0
    for m, (method, values) in enumerate(groups.items()):
        y = _pct([values.get(n) for n in names])
        offset = (m - (n_methods - 1) / 2) * width
        color = palette_for(names) / 255.0 if n_methods == 1 else method_colors[m]
        ax.bar(x + offset, np.nan_to_num(y), width, color=color, edgecolor="black", linewidth=0.5, label=method)
        for xi, yi in zip(x + offset, y, strict=True):
            if math.isnan(yi):
                ax.text(xi, 1.0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, labels=names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    ax.set_ylim(0, 105)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    if n_methods > 1:
        ax.legend()
    return _save(fig, path)


def epoch_axis(records: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[tuple[float, str]]]:
    """Return a global epoch per record and the stage boundaries ``[(x, stage name), ...]``.

    Stages are taken in order of first appearance. When a stage's epochs restart (its first epoch is
    below the end of the previous stage), they are shifted to continue after it; epochs already counted
    globally are kept. Records without a stage belong to one unnamed stage. A record with a negative epoch is
    an evaluation after training (training logs its test evaluation as epoch -1): it sits at the last epoch
    seen so far and opens no stage.
    """
    xs: list[float] = []
    bounds: list[tuple[float, str]] = []
    offsets: dict[str, float] = {}
    end = 0.0  # one past the last global epoch seen so far
    for rec in records:
        stage = str(rec.get("stage", ""))
        epoch = float(rec.get("epoch", 0))
        if epoch < 0:
            xs.append(max(end - 1.0, 0.0))
            continue
        if stage not in offsets:
            offsets[stage] = end if (offsets and epoch < end) else 0.0
            if len(offsets) > 1:
                bounds.append((epoch + offsets[stage] - 0.5, stage))
        x = epoch + offsets[stage]
        xs.append(x)
        end = max(end, x + 1)
    return xs, bounds


def plot_learning_curves(
    records: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    metrics: Sequence[str],
    title: str = "learning curves",
) -> Path:
    """B-seg Fig. 11: metrics per epoch (a panel per metric, a line per split), stage boundaries dashed.

    ``records`` are ``metrics.jsonl`` rows (``epoch``, ``stage``, ``split`` and metric values). When a
    (stage, epoch, split) appears more than once, the last row wins. Metrics in :data:`FRACTION_METRICS`
    are drawn in percent.
    """
    if not metrics:
        raise ValueError("no metrics to plot")
    xs, bounds = epoch_axis(records)
    fig = _new_figure(6.4, 2.6 * len(metrics) + 0.6)
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    split_names = sorted({str(rec.get("split", "")) for rec in records})
    split_colors = {n: generic_palette(len(split_names))[i] / 255.0 for i, n in enumerate(split_names)}
    for ax, metric in zip(axes, metrics, strict=True):
        # one segment per (split, stage) so that lines break at stage boundaries; one colour per split
        lines: dict[tuple[str, str], dict[float, float]] = {}
        for x, rec in zip(xs, records, strict=True):
            value = rec.get(metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scale = 100.0 if metric in FRACTION_METRICS else 1.0
                key = (str(rec.get("split", "")), str(rec.get("stage", "")))
                lines.setdefault(key, {})[x] = scale * float(value)
        labelled: set[str] = set()
        for (split, _stage), points in lines.items():
            px = sorted(points)
            ax.plot(
                px,
                [points[p] for p in px],
                marker="." if len(px) < 40 else None,
                color=split_colors[split],
                label=None if split in labelled else (split or "all"),
            )
            labelled.add(split)
        for bx, _stage in bounds:
            ax.axvline(bx, color="gray", linestyle="--", linewidth=1)
        if xs:
            ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
        if metric in FRACTION_METRICS:
            _percent_axis(ax, max((v for points in lines.values() for v in points.values()), default=math.nan))
        ax.set_ylabel(f"{metric} (%)" if metric in FRACTION_METRICS else metric)
        ax.grid(True, alpha=0.3)
        if lines:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel("epoch (across stages)")
    fig.suptitle(title)
    if bounds:
        first_stage = next(str(rec.get("stage", "")) for rec in records if float(rec.get("epoch", 0)) >= 0)
        edges = [min(xs) - 0.5, *(bx for bx, _ in bounds), max(xs) + 0.5]
        names = [first_stage, *(stage for _, stage in bounds)]
        _name_stages(fig, axes[0], list(zip(edges, edges[1:], names, strict=False)))
    return _save(fig, path)


STAGE_NAME_PT = 8.0
"""Font size of the stage names above the learning curves (the size of the figures' other small labels)."""
STAGE_NAME_GAP_PT = 6.0
"""Least space between two stage names on one row."""
STAGE_ROW_PT = 1.3 * STAGE_NAME_PT
"""Height of one row of stage names (font size and line spacing)."""


def _name_stages(fig: Figure, ax: Any, spans: Sequence[tuple[float, float, str]]) -> None:
    """Name each stage above ``ax``, centred over its epochs ``(start, end, name)``.

    Names go left to right onto the lowest row where they keep :data:`STAGE_NAME_GAP_PT` from every name already
    there, so short stages stack their names instead of printing them over each other. Widths are measured
    after the figure's layout; the rows added change the layout's heights only.
    """
    lift = STAGE_NAME_PT / 4
    names = [
        ax.annotate(
            name,
            xy=((start + end) / 2, 1.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(0.0, lift),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=STAGE_NAME_PT,
            color="gray",
            annotation_clip=False,
        )
        for start, end, name in spans
    ]
    fig.draw_without_rendering()
    renderer = cast(FigureCanvasAgg, fig.canvas).get_renderer()
    gap = STAGE_NAME_GAP_PT * fig.dpi / 72.0
    rows: list[list[tuple[float, float]]] = []
    for name in names:
        box = name.get_window_extent(renderer)
        fits = [all(box.x0 >= right + gap or left >= box.x1 + gap for left, right in row) for row in rows]
        row = fits.index(True) if True in fits else len(rows)
        if row == len(rows):
            rows.append([])
        rows[row].append((box.x0, box.x1))
        name.xyann = (0.0, lift + row * STAGE_ROW_PT)


def _display_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] != 3):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (C, H, W) with C in 1, 3; got shape {img.shape}")
    if img.dtype == np.uint8:
        return img
    return np.clip(img.astype(float), 0.0, 1.0)


def plot_qualitative(
    panels: Sequence[QualitativePanel],
    class_names: Sequence[str],
    path: str | Path,
    *,
    ignore_index: int = IGNORE_INDEX,
    title: str = "",
) -> Path:
    """Figs 8-9, 13: rows of image | ground truth | prediction(s) in the fixed class colours, and a legend."""
    if not panels:
        raise ValueError("no panels to plot")
    palette = palette_for(class_names)
    pred_names: list[str] = []
    for p in panels:
        pred_names.extend(n for n in p.preds if n not in pred_names)
    cols = 2 + len(pred_names)
    fig = _new_figure(2.6 * cols, 2.6 * len(panels) + 0.9)
    axes = fig.subplots(len(panels), cols, squeeze=False)
    for r, panel in enumerate(panels):
        img = _display_image(panel.image)
        maps = [("ground truth", panel.label)] + [(n, panel.preds.get(n)) for n in pred_names]
        axes[r, 0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
        axes[r, 0].set_title(panel.title or "image", fontsize=9)
        for c, (name, label) in enumerate(maps, start=1):
            if label is not None:
                axes[r, c].imshow(colorize(np.asarray(label), palette, ignore_index=ignore_index))
            if r == 0:
                axes[r, c].set_title(name, fontsize=9)
        for ax in axes[r]:
            ax.set_axis_off()
    handles = [Patch(facecolor=palette[i] / 255.0, edgecolor="black", label=n) for i, n in enumerate(class_names)]
    ignore_rgb = (IGNORE_COLOR[0] / 255.0, IGNORE_COLOR[1] / 255.0, IGNORE_COLOR[2] / 255.0)
    handles.append(Patch(facecolor=ignore_rgb, edgecolor="black", label="unlabeled"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray], captions: Sequence[str], path: str | Path, *, title: str = "", columns: int = 4
) -> Path:
    """Paper 002 Figs 9-10: example images (H, W, C) uint8 in a grid, each with its caption (classes predicted)."""
    if not images:
        raise ValueError("no images to plot")
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    fig = _new_figure(2.7 * cols, 2.9 * rows + (0.4 if title else 0.0))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        pixels = np.asarray(image)
        gray = pixels.ndim == 2 or pixels.shape[-1] == 1
        ax.imshow(pixels.squeeze(-1) if pixels.ndim == 3 and gray else pixels, cmap="gray" if gray else None)
        ax.set_title(caption, fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_tsne(
    feature_sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    path: str | Path,
    *,
    max_points: int = 2000,
    seed: int = 0,
    ignore_index: int = IGNORE_INDEX,
) -> Path:
    """B-seg Fig. 12: t-SNE of sampled per-pixel features coloured by class, one panel per model.

    ``feature_sets`` maps a model name (e.g. "baseline", "ours") to ``(features (N, D), labels (N,))``.
    Ignored labels are dropped, then at most ``max_points`` points are drawn at random (seeded) and
    embedded with scikit-learn's ``TSNE`` (PCA initialisation, ``random_state=seed``).
    """
    # imported here: scikit-learn is slow to import and only needed here (threadpoolctl comes with it)
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if not feature_sets:
        raise ValueError("no feature sets to plot")
    palette = palette_for(class_names) / 255.0
    fig = _new_figure(4.6 * len(feature_sets), 5.0)
    axes = fig.subplots(1, len(feature_sets), squeeze=False)[0]
    rng = np.random.default_rng(seed)
    panels = progress(feature_sets.items(), f"t-SNE of at most {max_points:,} points a panel", "panel")
    for ax, (name, (features, labels)) in zip(axes, panels, strict=True):
        feats = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
        labs = np.asarray(labels).reshape(-1)
        if len(feats) != len(labs):
            raise ValueError(f"{name}: {len(feats)} feature rows but {len(labs)} labels")
        keep = labs != ignore_index
        feats, labs = feats[keep], labs[keep]
        if len(labs) > max_points:
            idx = rng.choice(len(labs), size=max_points, replace=False)
            feats, labs = feats[idx], labs[idx]
        if len(labs) < 5:
            raise ValueError(f"{name}: t-SNE needs at least 5 labeled points, got {len(labs)}")
        perplexity = float(min(30.0, (len(labs) - 1) / 3))
        # one thread: on <= a few thousand points thread pools cost more than they save (and oversubscribe)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=1)
        with threadpool_limits(limits=1):
            emb = tsne.fit_transform(feats)
        for c, cname in enumerate(class_names):
            sel = labs == c
            if sel.any():
                ax.scatter(emb[sel, 0], emb[sel, 1], s=4, color=palette[c], label=cname)
        ax.set_title(f"{name} (n={len(labs)})")
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(facecolor=palette[i], label=n) for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7), fontsize=8)
    return _save(fig, path)
