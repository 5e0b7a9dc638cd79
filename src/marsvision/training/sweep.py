"""Sweeps: one recipe over a grid of config values and several seeds, summarised as mean ± std."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import logging
import statistics
from pathlib import Path
from typing import Any

from marsvision.atomic import atomic_write_text
from marsvision.runfolder import RESULTS_CSV, RESULTS_JSON, SUMMARY_JSON
from marsvision.training import runs
from marsvision.training.api import train
from marsvision.training.config import load_config
from marsvision.training.factory import resolve_weights
from marsvision.training.optim import check_backbone_start

log = logging.getLogger(__name__)


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order the grid lists them."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def setting_name(point: dict[str, Any]) -> str:
    """A file-name-safe label of one grid point, e.g. ``label_fraction=0.05,weights=latest_simclr``."""
    parts = []
    for key, value in point.items():
        text = "none" if value is None else str(value)
        parts.append(f"{key.rsplit('.', 1)[-1]}={text}")
    return ",".join(parts).replace("/", "_").replace(":", "_").replace(" ", "")


def setting_text(point: dict[str, Any], seed: int) -> str:
    """A grid point and seed as people read them: ``label_fraction=0.2, weights=none, seed=1``."""
    parts = [f"{key.rsplit('.', 1)[-1]}={'none' if value is None else value}" for key, value in point.items()]
    return ", ".join([*parts, f"seed={seed}"])


def summarise(rows: list[dict[str, Any]], grid_keys: list[str]) -> list[dict[str, Any]]:
    """Mean and (sample) standard deviation of every numeric metric per grid point, over seeds."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(json.dumps({k: row[k] for k in grid_keys}, sort_keys=True), []).append(row)
    summary = []
    for key, members in groups.items():
        entry: dict[str, Any] = json.loads(key)
        entry["seeds"] = sorted(m["seed"] for m in members)
        metric_names = sorted({n for m in members for n, v in m["metrics"].items() if isinstance(v, (int, float))})
        for name in metric_names:
            values = [float(m["metrics"][name]) for m in members if m["metrics"].get(name) is not None]
            if not values:
                continue
            entry[f"{name}_mean"] = statistics.fmean(values)
            entry[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(entry)
    return summary


def _write_results(out: Path, rows: list[dict[str, Any]], grid_keys: list[str]) -> list[dict[str, Any]]:
    runs.write_json_atomic(out / RESULTS_JSON, rows)
    metric_names = sorted({n for r in rows for n, v in r["metrics"].items() if isinstance(v, (int, float))})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*grid_keys, "seed", "run_dir", *metric_names])
    for row in rows:
        metrics = row["metrics"]
        writer.writerow(
            [*(row[k] for k in grid_keys), row["seed"], row["run_dir"], *(metrics.get(n) for n in metric_names)]
        )
    atomic_write_text(out / RESULTS_CSV, buffer.getvalue())
    summary = summarise(rows, grid_keys)
    runs.write_json_atomic(out / SUMMARY_JSON, summary)
    return summary


def run_sweep(
    recipe: str,
    overrides: list[str],
    *,
    seeds: list[int] | None = None,
    out: Path | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Train and evaluate every (grid point, seed); results are written after each run.

    Re-running with the same ``out`` skips the (point, seed) pairs already finished, so an interrupted sweep
    continues where it stopped.
    """
    base = load_config(recipe, overrides)
    grid = base.sweep.grid
    seed_list = seeds if seeds is not None else base.sweep.seeds
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(base.runs_root) / f"{base.name}-sweep-{stamp}"
    plan = [(point, seed) for point in grid_points(grid) for seed in seed_list]
    configs = [  # every point's config is checked before the sweep folder is made
        load_config(
            recipe,
            [
                *overrides,
                *(f"{key}={json.dumps(value)}" for key, value in point.items()),
                f"seed={seed}",
                f"runs_root={out}",
                f"name={base.name}-{setting_name(point)}-seed{seed}",
            ],
        )
        for point, seed in plan
    ]
    for config in configs:  # a missing weights file fails now, not after the points before it have trained
        check_backbone_start(config)
        if config.model.initial_weights:
            weights = resolve_weights(config.model.initial_weights, config.runs_root)
            if not weights.is_file():
                raise FileNotFoundError(f"{weights}: weights file not found (model.weights of {config.name})")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = json.loads((out / RESULTS_JSON).read_text()) if (out / RESULTS_JSON).is_file() else []
    done = {(json.dumps({k: r[k] for k in grid}, sort_keys=True), r["seed"]) for r in rows}
    for number, ((point, seed), config) in enumerate(zip(plan, configs, strict=True), start=1):
        if (json.dumps(point, sort_keys=True), seed) in done:
            log.info(f"run {number}/{len(plan)}: {setting_text(point, seed)} finished before, skipped")
            continue
        log.info(f"run {number}/{len(plan)}: {setting_text(point, seed)}")
        result = train(config, argv=argv)
        run_dir = Path(result["run_dir"])
        # run_dir relative to the sweep folder, so the sweep can be moved (and its report still finds the runs).
        metrics = {**result["metrics"], "wall_time_s": result["wall_time_s"]}
        rows.append({**point, "seed": seed, "run_dir": run_dir.name, "metrics": metrics})
        _write_results(out, rows, list(grid))
    summary = _write_results(out, rows, list(grid))
    return {"sweep_dir": str(out), "runs": len(rows), "summary": summary}
