"""HTML and Markdown reports of a run directory or a sweep directory, built from their log files only.

``write_report(path)`` detects the kind of folder (a sweep has ``results.json``, ``results.csv`` or
``summary.json``), writes the figures to ``<path>/figures/*.png`` and the reports to ``<path>/report.html``
(self-contained: figures inlined, no external links, no scripts) and ``<path>/report.md`` (figures
referenced from ``figures/``).
Optional inputs that are missing or unreadable leave their section with a note instead of a figure; a missing
required file raises :class:`~marsvision.evaluation.runlogs.RunLogError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from marsvision import runfolder
from marsvision.atomic import atomic_write_text
from marsvision.data.classes import IGNORE_INDEX
from marsvision.evaluation import plots
from marsvision.evaluation.aggregate import (
    Stat,
    as_fraction,
    fraction_key,
    fraction_series,
    group_stats,
    setting_label,
    swept_keys,
    value_label,
)
from marsvision.evaluation.document import (
    Block,
    Figure,
    Link,
    Note,
    Pre,
    Section,
    Table,
    render_html,
    render_markdown,
)
from marsvision.evaluation.metric_names import BIG_ROCK_RECALL, METRIC_LABELS, SCALAR_METRICS, percent
from marsvision.evaluation.plots import QualitativePanel
from marsvision.evaluation.runlogs import (
    RUN_REQUIRED,
    EvalResult,
    RunLogError,
    RunLogs,
    SweepLogs,
    is_sweep_dir,
    load_features,
    load_panel,
    load_predictions,
    load_run,
    load_sweep,
    read_eval,
)
from marsvision.evaluation.study import run_name, run_study, sweep_name, sweep_study

MAX_PANELS = 8
EXAMPLE_IMAGES = 12
"""Images in each of paper 002's Figs 9-10 (classification examples and failure cases)."""
TSNE_POINTS = 2000


def _pm(stat: Stat, seeds: int) -> str:
    """``mean ± std`` in percent over the seeds of a cell; one seed shows its value alone, no "± 0.00".

    A cell with fewer values than its row's seeds (a run without this metric) says how many it has.
    """
    if stat.n == 0:
        return "n/a"
    text = percent(stat.mean) if stat.n == 1 else f"{percent(stat.mean)} ± {percent(stat.std)}"
    return text if stat.n == seeds else f"{text} (n={stat.n})"


def _try_figure(caption: str, draw: Callable[[], Path]) -> Block:
    """Draw a figure; an unreadable optional input becomes a note instead of a crash."""
    try:
        return Figure(draw(), caption)
    except (RunLogError, ValueError, OSError) as exc:
        return Note(f"{caption}: omitted ({exc}).")


# ------------------------------------------------------------------------------------------------ runs


def _meta_section(run: RunLogs) -> Section:
    rows = [["folder", run.name]]
    rows += [[str(k), v if isinstance(v, str) else json.dumps(v)] for k, v in run.meta.items()]
    return Section("Run", [Table(["key", "value"], rows)])


def _metrics_section(ev: EvalResult) -> Section:
    m = ev.computed_metrics()
    scalar = [[METRIC_LABELS[k], percent(m[k])] for k in SCALAR_METRICS if k in m]
    scalar.append(["labeled samples" if ev.task == "classification" else "labeled pixels", f"{m['total']:,}"])
    blocks: list[Block] = [
        Note(f"Computed from the confusion matrix in eval.json ({ev.task}, split '{ev.split}'); values in %."),
        Table(["metric", "value"], scalar),
    ]
    if ev.task == "segmentation":
        headers = ["class", "support", "recall", "precision", "IoU"]
        rows = [
            [n, f"{m['support'][n]:,}", percent(m["recall"][n]), percent(m["precision"][n]), percent(m["iou"][n])]
            for n in ev.class_names
        ]
    else:
        headers = ["class", "support", "accuracy", "precision"]
        rows = [
            [n, f"{m['support'][n]:,}", percent(m["per_class_accuracy"][n]), percent(m["precision"][n])]
            for n in ev.class_names
        ]
    blocks.append(Table(headers, rows))
    return Section("Final metrics", blocks)


def _numeric_keys(records: Sequence[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for rec in records:
        for k, v in rec.items():
            if k not in keys and k not in ("epoch", "step") and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    return keys


def _curves_section(run: RunLogs, figdir: Path) -> Section:
    section = Section("Learning curves")
    if not run.records:
        section.blocks.append(Note("metrics.jsonl holds no records."))
        return section
    keys = _numeric_keys(run.records)
    quality = [k for k in SCALAR_METRICS if k in keys]
    losses = [k for k in keys if "loss" in k]
    if quality:
        section.blocks.append(
            Figure(
                plots.plot_learning_curves(run.records, figdir / "learning_curves.png", metrics=quality),
                "Metrics per epoch by split; dashed lines mark stage boundaries (B-seg Fig. 11).",
            )
        )
    if losses:
        section.blocks.append(
            Figure(
                plots.plot_learning_curves(run.records, figdir / "losses.png", metrics=losses, title="losses"),
                "Losses per epoch by split.",
            )
        )
    if not quality and not losses:
        section.blocks.append(Note(f"No metric or loss to plot in metrics.jsonl (keys: {', '.join(keys) or 'none'})."))
    return section


def _eval_figures(ev: EvalResult, figdir: Path) -> list[Section]:
    names = ev.class_names
    m = ev.computed_metrics()
    cm_fig = plots.plot_confusion_matrix(
        ev.confusion_matrix, names, figdir / "confusion_matrix.png", title=f"confusion matrix ({ev.split})"
    )
    dist_fig = plots.plot_class_distribution(ev.confusion_matrix.sum(axis=1), names, figdir / "class_distribution.png")
    if ev.task == "segmentation":
        per_class = plots.plot_per_class(
            {"recall": m["recall"], "IoU": m["iou"]},
            figdir / "per_class.png",
            ylabel="%",
            title="per-class recall and IoU",
        )
        per_caption = "Per-class recall and IoU (n/a: class absent)."
    else:
        per_class = plots.plot_per_class(
            {"accuracy": m["per_class_accuracy"]}, figdir / "per_class.png", title="per-class accuracy"
        )
        per_caption = "Per-class accuracy (B-cls Fig. 8)."
    unit = "images" if ev.task == "classification" else "labeled pixels"
    blocks: list[Block] = [
        Figure(per_class, per_caption),
        Figure(dist_fig, f"Share of {unit} per class in '{ev.split}' (Fig. 6)."),
    ]
    never = [
        name for name, column in zip(names, np.asarray(ev.confusion_matrix).sum(axis=0), strict=True) if column == 0
    ]
    if never:
        blocks.insert(
            0,
            Note(
                f"Never predicted on '{ev.split}': {', '.join(never)} (no {unit[:-1]} was assigned to "
                f"{'it' if len(never) == 1 else 'them'}; their recall is 0 % or n/a)."
            ),
        )
    return [
        Section(
            "Confusion matrix",
            [Figure(cm_fig, "Rows normalised per true class: each row sums to 100 % (Figs 4-5).")],
        ),
        Section("Per-class results", blocks),
    ]


def _class_names(run: RunLogs, labels: Sequence[np.ndarray]) -> list[str]:
    if run.evaluation is not None:
        return run.evaluation.class_names
    top = max((int(a[a != 255].max()) for a in labels if (a != 255).any()), default=0)
    return [f"class {i}" for i in range(top + 1)]


def _qualitative_section(run: RunLogs, figdir: Path) -> Section:
    section = Section("Qualitative results")
    if not run.qualitative:
        section.blocks.append(Note("No qualitative/*.npz panels in this run; section omitted."))
        return section

    def draw() -> Path:
        panels = [load_panel(p) for p in run.qualitative[:MAX_PANELS]]
        labels = [p.label for p in panels] + [a for p in panels for a in p.preds.values()]
        return plots.plot_qualitative(panels, _class_names(run, labels), figdir / "qualitative.png")

    shown = min(len(run.qualitative), MAX_PANELS)
    section.blocks.append(
        _try_figure(
            f"Image | ground truth | prediction(s), {shown} of {len(run.qualitative)} panels (Figs 8-9, 13)",
            draw,
        )
    )
    return section


def _tsne_section(run: RunLogs, figdir: Path) -> Section:
    section = Section("Feature t-SNE")
    features = run.features
    if features is None:
        section.blocks.append(Note("No features.npz in this run; section omitted."))
        return section

    def draw() -> Path:
        sets = load_features(features, run.name)
        names = _class_names(run, [np.asarray(lab) for _, lab in sets.values()])
        return plots.plot_tsne(sets, names, figdir / "tsne.png", max_points=TSNE_POINTS)

    section.blocks.append(
        _try_figure(f"t-SNE of at most {TSNE_POINTS} sampled per-pixel features, coloured by class (Fig. 12)", draw)
    )
    return section


def run_sections(run: RunLogs, figdir: Path) -> list[Section]:
    """All sections of a run report; figures are written to ``figdir``."""
    sections = [_meta_section(run), Section("Configuration", [Pre(run.config_text)])]
    if run.evaluation is None:
        sections.append(
            Section(
                "Final metrics",
                [Note("No eval.json in this run; metrics, confusion matrix and per-class charts omitted.")],
            )
        )
    else:
        sections.append(_metrics_section(run.evaluation))
    sections.append(_curves_section(run, figdir))
    if run.evaluation is not None:
        sections += _eval_figures(run.evaluation, figdir)
    sections += [_qualitative_section(run, figdir), _tsne_section(run, figdir)]
    return sections


# ---------------------------------------------------------------------------------------------- sweeps


def _present(sweep: SweepLogs, metric: str) -> bool:
    return any(metric in m for m in sweep.metrics)


def _summary_table(sweep: SweepLogs, keys: list[str], metrics: list[str]) -> Table:
    stats = {m: group_stats(sweep, m, keys) for m in metrics}
    settings = list(next(iter(stats.values())).keys()) if stats else []
    rows = []
    for setting in settings:
        seeds = max(stats[m][setting].n for m in metrics)
        rows.append([*setting, str(seeds), *(_pm(stats[m][setting], seeds) for m in metrics)])
    return Table([*(keys or ["setting"]), "seeds", *(f"{METRIC_LABELS.get(m, m)} (%)" for m in metrics)], rows)


def sweep_sections(sweep: SweepLogs, figdir: Path) -> list[Section]:
    """All sections of a sweep report; figures are written to ``figdir``."""
    keys = swept_keys(sweep.params)
    metrics = [m for m in (*SCALAR_METRICS, BIG_ROCK_RECALL) if _present(sweep, m)]
    sections = [
        Section(
            "Summary",
            [
                Note(
                    f"{len(sweep.params)} runs; mean ± std over the seeds of each setting (sample std; a single "
                    "seed shows its value alone), values in %."
                )
            ],
        )
    ]
    if metrics:
        sections[0].blocks.append(_summary_table(sweep, keys, metrics))
    else:
        sections[0].blocks.append(Note("No known metric (acc, macc, facc, miou, top1) in the results."))

    efficiency = Section("Label efficiency")
    for metric in [m for m in ("acc", "top1", "miou") if m in metrics]:
        series = fraction_series(sweep, metric)
        if series:
            path = plots.plot_label_efficiency(
                series, figdir / f"label_efficiency_{metric}.png", metric=METRIC_LABELS[metric]
            )
            efficiency.blocks.append(
                Figure(path, f"Test {METRIC_LABELS[metric]} vs labeled fraction, mean ± std over seeds (Fig. 3).")
            )
    if not efficiency.blocks:
        efficiency.blocks.append(
            Note("Not a label-fraction sweep (no swept key ending in 'fraction'); figure omitted.")
        )
    sections.append(efficiency)

    rock = Section("Big-rock recall")
    rock_series = fraction_series(sweep, BIG_ROCK_RECALL)
    if rock_series and all(y == 0 for s in rock_series for y in s.y):
        rock.blocks.append(
            Note(
                "No run found a single big-rock pixel: recall is 0 % for every method at every labeled fraction "
                "(figure omitted)."
            )
        )
    elif rock_series:
        path = plots.plot_class_metric_vs_fraction(rock_series, figdir / "big_rock_recall.png", class_name="big rock")
        rock.blocks.append(Figure(path, "Big-rock recall vs labeled fraction, mean ± std over seeds (Fig. 7)."))
    else:
        rock.blocks.append(
            Note("No 'big rock' recall per labeled fraction in the results or child eval.json files; figure omitted.")
        )
    sections.append(rock)

    sections.extend(_comparison_sections(sweep, keys, figdir))
    run_keys = [*keys, "seed"] if any("seed" in p for p in sweep.params) else keys
    table_metrics = [m for m in SCALAR_METRICS if m in metrics]
    rows = [
        [
            str(d.name) if d is not None else "-",
            *(value_label(k, p[k]) if k in p else "" for k in run_keys),
            *(percent(m.get(k)) for k in table_metrics),
        ]
        for p, m, d in zip(sweep.params, sweep.metrics, sweep.run_dirs, strict=True)
    ]
    sections.append(Section("Runs", [Table(["run", *run_keys, *(f"{k} (%)" for k in table_metrics)], rows)]))
    if sweep.summary is None:
        sections.append(Section(runfolder.SUMMARY_JSON, [Note(f"No {runfolder.SUMMARY_JSON} in this sweep.")]))
    else:
        summary = Link(sweep.path / runfolder.SUMMARY_JSON, "the same means and standard deviations, as JSON")
        sections.append(Section(runfolder.SUMMARY_JSON, [summary]))
    return sections


def _comparison_sections(sweep: SweepLogs, keys: list[str], figdir: Path) -> list[Section]:
    """Sweep figures that compare methods run by run: Figs 4-5 and 8-9.

    Figs 4-5: confusion matrices per method at the smallest and largest fraction, summed over seeds.
    Figs 8-9: the same test images predicted by each method at the smallest fraction.
    """
    fkey = fraction_key(keys)
    if fkey is None:
        return []
    method_keys = [k for k in keys if k != fkey]
    groups: dict[tuple[str, float], list[Path]] = {}
    for params, run_dir in zip(sweep.params, sweep.run_dirs, strict=True):
        fraction = as_fraction(params.get(fkey))
        if run_dir is not None and fraction is not None and (run_dir / runfolder.EVAL_FILE).is_file():
            groups.setdefault((setting_label(params, method_keys), fraction), []).append(run_dir)
    if not groups:
        return []
    fractions = sorted({f for _, f in groups})
    ends = sorted({fractions[0], fractions[-1]})
    confusion = Section("Confusion matrices")
    for (method, fraction), run_dirs in sorted(groups.items()):
        if fraction not in ends:
            continue
        evaluations = [read_eval(d / runfolder.EVAL_FILE) for d in run_dirs]
        total = np.sum([e.confusion_matrix for e in evaluations], axis=0)
        name = f"confusion_{_slug(method)}_{fraction:g}.png"
        path = plots.plot_confusion_matrix(
            total, evaluations[0].class_names, figdir / name, title=f"{method}, {fraction:.0%} of labels"
        )
        confusion.blocks.append(
            Figure(path, f"{method} at {fraction:.0%} of the labels, {len(run_dirs)} seed(s) summed (Figs 4-5).")
        )
    sections = [confusion]
    smallest = {method: dirs[0] for (method, fraction), dirs in sorted(groups.items()) if fraction == fractions[0]}
    panel_files = {m: sorted((d / runfolder.QUALITATIVE_DIR).glob("*.npz")) for m, d in smallest.items()}
    if len(smallest) > 1 and all(panel_files.values()):
        count = min(len(files) for files in panel_files.values())
        panels = []
        for index in range(count):
            loaded = {m: load_panel(files[index]) for m, files in panel_files.items()}
            first = next(iter(loaded.values()))
            preds = {m: next(iter(panel.preds.values())) for m, panel in loaded.items()}  # each run predicts once
            panels.append(QualitativePanel(first.image, first.label, preds, title=first.title))
        names = read_eval(next(iter(smallest.values())) / runfolder.EVAL_FILE).class_names
        at = f"at {fractions[0]:.0%} of the labels, same test images"
        section = Section("Qualitative comparison")
        arms = _supervised_and_pretrained(list(smallest))
        if arms is None:
            path = plots.plot_qualitative(panels[:MAX_PANELS], names, figdir / "qualitative_comparison.png")
            section.blocks.append(Figure(path, f"Image | ground truth | each method {at} (Figs 8-9)."))
        else:
            supervised, pretrained = arms
            for better, worse, name, figure in (
                (pretrained, supervised, "qualitative_pretrained_better.png", "Fig. 8"),
                (supervised, pretrained, "qualitative_supervised_better.png", "Fig. 9"),
            ):
                chosen = [p for p in panels if _pixel_accuracy(p, better) > _pixel_accuracy(p, worse)][:MAX_PANELS]
                if not chosen:
                    section.blocks.append(Note(f"No saved test image where {better} beats {worse} ({figure})."))
                    continue
                path = plots.plot_qualitative(chosen, names, figdir / name)
                section.blocks.append(Figure(path, f"Images where {better} beats {worse} {at} ({figure})."))
        sections.append(section)
    return sections


def _supervised_and_pretrained(methods: list[str]) -> tuple[str, str] | None:
    """(the random-init arm, the pretrained arm) of a two-arm label-fraction sweep, as paper 000 compares them."""
    supervised = [m for m in methods if m == value_label("model.weights", None)]
    if len(methods) != 2 or len(supervised) != 1:
        return None
    return supervised[0], next(m for m in methods if m != supervised[0])


def _pixel_accuracy(panel: QualitativePanel, method: str) -> float:
    """The share of a panel's labeled pixels that ``method`` predicts right."""
    labeled = panel.label != IGNORE_INDEX
    correct = (np.asarray(panel.preds[method]) == panel.label) & labeled
    return float(correct.sum() / max(int(labeled.sum()), 1))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_") or "all"


# ----------------------------------------------------------------------------------------------- entry


def write_report(path: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (and ``figures/*.png``) for a run or sweep directory.

    Returns:
        ``(html_path, md_path)``.

    Raises:
        RunLogError: the folder is missing, is neither a run nor a sweep, or a required file is missing or
            malformed (the message names the file).
    """
    root = Path(path)
    if not root.is_dir():
        raise RunLogError(root, "directory does not exist")
    figdir = root / runfolder.FIGURES_DIR
    if is_sweep_dir(root):
        sweep = load_sweep(root)
        title = f"{sweep_study(sweep)} (marsvision sweep report)"
        sections = sweep_sections(sweep, figdir)
    else:
        if not any((root / n).is_file() for n in (*RUN_REQUIRED, runfolder.EVAL_FILE)):
            raise RunLogError(
                root,
                "neither a run directory (config.yaml, meta.json, metrics.jsonl) nor a sweep (results.json)",
            )
        run = load_run(root)
        title = f"{run_study(run)} (marsvision run report)"
        sections = run_sections(run, figdir)
    html_path = atomic_write_text(root / "report.html", render_html(title, sections))
    md_path = atomic_write_text(root / "report.md", render_markdown(title, sections, root))
    return html_path, md_path


def write_tsne_comparison(run_dirs: Sequence[str | Path], path: str | Path | None = None) -> Path:
    """One t-SNE figure with a panel per run, side by side (B-seg Fig. 12: baseline vs ours).

    Each run's ``features.npz`` supplies its panel, named after the run's config ``name`` (its folder when
    two runs share a name; ``<run>/<set>`` for a file holding named sets); class names come from the first
    run with an ``eval.json``. The figure goes to ``path``, by default ``figures/tsne_comparison.png`` of the
    first run.

    Raises:
        RunLogError: a folder is not a run, or has no (or a malformed) ``features.npz``.
        ValueError: fewer than two runs.
    """
    if len(run_dirs) < 2:
        raise ValueError(f"a t-SNE comparison needs at least two runs, got {len(run_dirs)}")
    runs = [load_run(Path(d)) for d in run_dirs]
    configured = [run.config.get("name") if isinstance(run.config, dict) else None for run in runs]
    unique = all(configured) and len(set(configured)) == len(runs)
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for run, configured_name in zip(runs, configured, strict=True):
        if run.features is None:
            raise RunLogError(run.path / runfolder.FEATURES_FILE, "required file is missing (evaluate the run again)")
        title = str(configured_name) if unique else run.name
        for name, arrays in load_features(run.features, title).items():
            sets[name if name == title else f"{title}/{name}"] = arrays
    labels = [np.asarray(lab) for _, lab in sets.values()]
    named = next((run for run in runs if run.evaluation is not None), runs[0])
    out = Path(path) if path is not None else runs[0].path / runfolder.FIGURES_DIR / "tsne_comparison.png"
    return plots.plot_tsne(sets, _class_names(named, labels), out, max_points=TSNE_POINTS)


def _summed_evaluation(path: Path) -> tuple[str, EvalResult]:
    """A run's evaluation, or a sweep's with the confusion matrices of all its runs summed; with its name."""
    if not is_sweep_dir(path):
        run = load_run(path)
        if run.evaluation is None:
            raise RunLogError(path / runfolder.EVAL_FILE, "required file is missing")
        return run_name(run), run.evaluation
    sweep = load_sweep(path)
    evaluations = [
        read_eval(d / runfolder.EVAL_FILE)
        for d in sweep.run_dirs
        if d is not None and (d / runfolder.EVAL_FILE).is_file()
    ]
    if not evaluations:
        raise RunLogError(path, "no run of this sweep has an eval.json")
    first = evaluations[0]
    total = np.sum([e.confusion_matrix for e in evaluations], axis=0)
    return sweep_name(sweep), EvalResult(first.task, first.split, first.class_names, total, {})


def write_per_class_comparison(paths: Sequence[str | Path], path: str | Path) -> Path:
    """Per-class accuracy (classification) or IoU (segmentation) of several runs or sweeps side by side.

    B-cls Fig. 8 compares methods class by class; a sweep counts as one method, its seeds' confusion matrices
    summed. Every input must share the class names.
    """
    groups: dict[str, dict[str, float | None]] = {}
    names: list[str] | None = None
    for item in paths:
        label, evaluation = _summed_evaluation(Path(item))
        if names is not None and evaluation.class_names != names:
            raise RunLogError(Path(item), "class names differ from the first input's")
        names = evaluation.class_names
        metrics = evaluation.computed_metrics()
        groups[label] = metrics["per_class_accuracy"] if evaluation.task == "classification" else metrics["iou"]
    task_metric = "accuracy" if "per_class_accuracy" in metrics else "IoU"
    title = f"per-class {task_metric}: {' vs '.join(groups)}"
    return plots.plot_per_class(groups, path, ylabel=f"per-class {task_metric} (%)", title=title)


def _spread_over_classes(positions: Sequence[int], classes: Sequence[int], limit: int) -> list[int]:
    """At most ``limit`` of ``positions``: one of each class first (in order of appearance), then the rest."""
    first_of_class: dict[int, int] = {}
    for position, cls in zip(positions, classes, strict=True):
        first_of_class.setdefault(cls, position)
    chosen = list(first_of_class.values())[:limit]
    chosen += [p for p in positions if p not in chosen][: limit - len(chosen)]
    return sorted(chosen, key=list(positions).index)


def write_classification_examples(baseline: str | Path, ours: str | Path, folder: str | Path) -> dict[str, Path]:
    """Paper 002 Figs 9-10 from two classification runs' ``predictions.npz``.

    ``examples``: test images ``ours`` classifies right and ``baseline`` wrong; ``failures``: images ``ours``
    gets wrong; one of each class first.

    Raises:
        RunLogError: a run has no (or a malformed) ``predictions.npz`` or ``eval.json``, or the two runs were
            tested on different images.
    """
    base_dir, ours_dir, out = Path(baseline), Path(ours), Path(folder)
    base = load_predictions(base_dir / runfolder.PREDICTIONS_FILE)
    mine = load_predictions(ours_dir / runfolder.PREDICTIONS_FILE)
    if base.ids != mine.ids:
        raise RunLogError(ours_dir / runfolder.PREDICTIONS_FILE, f"tested on other images than {base_dir}")
    names = read_eval(ours_dir / runfolder.EVAL_FILE).class_names
    base_name, ours_name = run_name(load_run(base_dir)), run_name(load_run(ours_dir))
    written: dict[str, Path] = {}
    base_errors = {int(p): i for i, p in enumerate(base.error_positions)}
    wins = [p for p in base_errors if mine.preds[p] == mine.targets[p]]
    if wins:
        chosen = _spread_over_classes(wins, [int(mine.targets[p]) for p in wins], EXAMPLE_IMAGES)
        written["examples"] = plots.plot_image_grid(
            [base.error_images[base_errors[p]] for p in chosen],
            [f"{names[mine.targets[p]]}\n{base_name}: {names[base.preds[p]]}" for p in chosen],
            out / "classification_examples.png",
            title=f"right by {ours_name}, wrong by {base_name} (paper 002 Fig. 9)",
        )
    failures = [int(p) for p in mine.error_positions]
    if failures:
        chosen = _spread_over_classes(failures, [int(mine.targets[p]) for p in failures], EXAMPLE_IMAGES)
        where = {int(p): i for i, p in enumerate(mine.error_positions)}
        written["failures"] = plots.plot_image_grid(
            [mine.error_images[where[p]] for p in chosen],
            [f"{names[mine.targets[p]]}\n{ours_name}: {names[mine.preds[p]]}" for p in chosen],
            out / "classification_failures.png",
            title=f"failure cases of {ours_name} (paper 002 Fig. 10)",
        )
    return written
