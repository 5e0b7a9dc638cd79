"""What a run or a sweep studied, in words: the names and titles reports and comparisons give them.

A run is named by its config's ``name`` (the recipe's, with a sweep's setting and seed appended), a sweep by the
recipe its runs were started from (``-r NAME`` on the command line saved in their ``meta.json``); the folder name,
which adds only a time stamp, is the fallback. A title adds what was trained on what: ``demo-semiseg: semiseg on
ai4mars``, ``demo-label-fractions: seg-supervised on ai4mars over label fraction × weights``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from marsvision.evaluation.aggregate import swept_keys
from marsvision.evaluation.runlogs import RUN_REQUIRED, RunLogs, SweepLogs, load_run

RECIPE_OPTIONS = ("-r", "--recipe")
"""The command-line options that name a recipe (``marsvision train -r NAME``)."""


def recipe_of(meta: Mapping[str, Any]) -> str | None:
    """The recipe named on the command line a run's ``meta.json`` saved (a YAML path gives its stem), or None."""
    command = meta.get("command")
    words = command.split() if isinstance(command, str) else [str(w) for w in command or []]
    for index, word in enumerate(words):
        value = words[index + 1] if word in RECIPE_OPTIONS and index + 1 < len(words) else None
        if word.startswith("--recipe="):
            value = word.removeprefix("--recipe=")
        if value:
            return Path(value).stem if value.endswith((".yaml", ".yml")) else value
    return None


def _config(run: RunLogs) -> Mapping[str, Any]:
    return run.config if isinstance(run.config, Mapping) else {}


def run_name(run: RunLogs) -> str:
    """The run's config ``name``, else its folder's."""
    return str(_config(run).get("name") or run.name)


def _trained(config: Mapping[str, Any], swept: Sequence[str] = ()) -> str:
    """``semiseg on ai4mars`` (and ``, 10 % of the labels`` below all); what a sweep varies is left out."""
    section = config.get("data")
    data: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
    method = None if "method" in swept else config.get("method")
    dataset = None if "data.dataset" in swept else data.get("dataset")
    text = " on ".join(str(part) for part in (method, dataset) if part)
    fraction = data.get("label_fraction")
    if not any(key.endswith("label_fraction") for key in swept) and isinstance(fraction, float) and fraction < 1:
        text += f", {100 * fraction:g} % of the labels"
    return text


def run_study(run: RunLogs) -> str:
    """``demo-semiseg: semiseg on ai4mars``: the run's name and what it trained on what."""
    trained = _trained(_config(run))
    return f"{run_name(run)}: {trained}" if trained else run_name(run)


def _first_run(sweep: SweepLogs) -> RunLogs | None:
    for folder in sweep.run_dirs:
        if folder is not None and all((folder / name).is_file() for name in RUN_REQUIRED):
            return load_run(folder)
    return None


def _sweep_name(sweep: SweepLogs, first: RunLogs | None) -> str:
    recipe = recipe_of(first.meta) if first is not None else None
    return recipe or sweep.name


def sweep_name(sweep: SweepLogs) -> str:
    """The recipe the sweep's runs were started from, else the sweep folder's name."""
    return _sweep_name(sweep, _first_run(sweep))


def sweep_study(sweep: SweepLogs) -> str:
    """``demo-label-fractions: seg-supervised on ai4mars over label fraction × weights``."""
    keys = swept_keys(sweep.params)
    first = _first_run(sweep)
    trained = _trained(_config(first), keys) if first is not None else ""
    over = " × ".join(key.rsplit(".", 1)[-1].replace("_", " ") for key in keys)
    about = " over ".join(part for part in (trained, over) if part)
    name = _sweep_name(sweep, first)
    return f"{name}: {about}" if about else name
