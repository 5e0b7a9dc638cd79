"""The ``marsvision`` command: data tools, training, evaluation, prediction, export, reports, the demo.

Conventions every command keeps: stdout carries only the result (a short table, or one JSON object with
``--json``); progress and log lines go to stderr; a failure is one line ``marsvision: error: …`` naming the file
or key, exit status 2 (1 means partial success: some inputs failed, or a dataset has problems); ``--debug``
shows the traceback and ``--verbose`` Lightning's own log lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from marsvision import runfolder
from marsvision.threads import prefer_passive_openmp

app = typer.Typer(
    name="marsvision",
    help="Few-label terrain segmentation and image classification for Mars rover imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

GLOBAL_FLAGS = ("--verbose", "--debug")
"""Options of the whole program that may also be written after the command (``marsvision train … --debug``)."""
EXIT_ERROR = 2
EXIT_PARTIAL = 1
EXIT_INTERRUPTED = 130

Recipe = Annotated[str | None, typer.Option("--recipe", "-r", help="Bundled recipe name or a YAML path.")]
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Config overrides key.sub=value, e.g. optim.lr=0.01 data.root=/data."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else there.")]
PrintConfig = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved config (recipe + overrides) and exit.")
]
Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda (overrides trainer.device).")]
Devices = Annotated[int | None, typer.Option(help="Devices per node; >1 trains with DDP.")]
Precision = Annotated[str | None, typer.Option(help="32, bf16-mixed or 16-mixed.")]
RunsRoot = Annotated[str | None, typer.Option(help="Folder that receives run directories (default runs/).")]
OVERRIDES_ACCEPTED = {"ignore_unknown_options": True}
"""Training commands pass ``--key.sub=value`` (Lightning's style) on to the overrides, which accept or explain it."""

log = logging.getLogger("marsvision")


class _CurrentStderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignore the stream given at construction: the current ``sys.stderr`` is always used."""


LIGHTNING_INFO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
)
"""Where Lightning's per-run INFO lines come from; levels set on these survive Lightning's import."""
BOILERPLATE_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # a torch deprecation inside Lightning, not our code
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"The '\w+_dataloader' does not have many workers",
    r"Checkpoint directory .* exists and is not empty",  # what a resumed run expects
)
"""Warnings every small or resumed run triggers, with nothing for the user to do about them."""


def configure_console(verbose: bool) -> None:
    """Show marsvision's log lines (progress, notes) on stderr; unless ``verbose``, silence Lightning's boilerplate.

    Silenced: GPU/TPU availability, the logger-service tip, ``limit_train_batches=1.0 was configured``,
    ``Trainer.fit stopped`` and :data:`BOILERPLATE_WARNINGS`. Lightning's other warnings stay.
    """
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    if verbose:
        return
    for name in LIGHTNING_INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in BOILERPLATE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        typer.echo(f"marsvision {metadata.version('marsvision')}")
        raise typer.Exit()


@app.callback()
def _program(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Also show Lightning's own log lines.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
) -> None:
    """Few-label terrain segmentation and image classification for Mars rover imagery."""
    configure_console(verbose)


def _emit(result: dict[str, Any], as_json: bool) -> None:
    from marsvision.training.runs import global_rank

    if global_rank() != 0:
        return  # under DDP only the first process reports
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        from marsvision.display import render

        typer.echo(render(result))


def _trainer_overrides(
    overrides: list[str] | None,
    device: str | None,
    devices: int | None,
    precision: str | None,
    runs_root: str | None,
) -> list[str]:
    extra = [_override(text) for text in overrides or []]
    for key, value in (
        ("trainer.device", device),
        ("trainer.devices", devices),
        ("trainer.precision", precision),
        ("runs_root", runs_root),
    ):
        if value is not None:
            extra.append(f"{key}={value}")
    return extra


def _override(text: str) -> str:
    """``--trainer.max_epochs=1`` (Lightning's style) is read as ``trainer.max_epochs=1``; other options explain."""
    from marsvision.training.config import ConfigError

    if not text.startswith("-"):
        return text
    if text.startswith("--") and "=" in text:
        return text[2:]
    key = text.lstrip("-")
    if "." in key:
        raise ConfigError(f"{text}: a config override needs a value, written {key}=VALUE")
    raise ConfigError(f"no such option {text}; --help lists the options (config overrides are written key.sub=value)")


def _print_config(config: Any, as_json: bool) -> None:
    import yaml

    from marsvision.training.config import to_dict

    values = to_dict(config)
    if as_json:
        sys.stdout.write(json.dumps(values, sort_keys=True) + "\n")
    else:
        typer.echo(yaml.safe_dump(values, sort_keys=False).rstrip())


DEFAULT_RECIPES = {"pretrain": "simclr-ai4mars", "train": "finetune-ai4mars", "sweep": "goh-label-fractions"}
"""The paper-scale recipe a training command falls back to when overrides but no ``-r`` are given."""
EXAMPLE_RECIPES = {"pretrain": "demo-simclr", "train": "demo-label-fractions", "sweep": "demo-label-fractions"}


def _recipe_or_default(command: str, recipe: str | None, overrides: list[str]) -> str:
    """The recipe to load; a bare command (no ``-r``, no overrides) is refused with the fix.

    Overrides without ``-r`` keep the paper-scale default recipe, and a note on stderr says so and where its data
    must be.
    """
    from marsvision.training.config import ConfigError, load_config

    if recipe is not None:
        return recipe
    default = DEFAULT_RECIPES[command]
    if not overrides:
        raise ConfigError(
            f"`marsvision {command}` needs a recipe: -r NAME (`marsvision recipes` lists them, e.g. "
            f"-r {EXAMPLE_RECIPES[command]}) or -r path/to/recipe.yaml"
        )
    root = load_config(default, overrides).data.root
    log.warning(f"no -r given: using the paper-scale recipe {default} (data.root={root or '(unset)'})")
    return default


def _run_training(
    command: str,
    recipe: str | None,
    overrides: list[str],
    resume: Path | None,
    print_config: bool,
    as_json: bool,
) -> None:
    from marsvision.training.config import ConfigError, load_config

    pretraining = command == "pretrain"
    if resume is not None and overrides:
        raise ValueError(f"--resume continues {resume} with its saved config; drop the overrides {overrides}")
    if resume is not None:
        from marsvision.training.api import config_of_resume

        config = config_of_resume(resume)
    else:
        recipe = _recipe_or_default(command, recipe, overrides)
        config = load_config(recipe, overrides)
    if print_config:
        _print_config(config, as_json)
        return
    from marsvision.training.registry import method_class

    if resume is None and (method_class(config.method).task == "pretrain") != pretraining:
        other = "train" if pretraining else "pretrain"
        raise ConfigError(
            f"method {config.method!r} (recipe {recipe}) is not for `marsvision {command}`: use `marsvision {other}`"
        )
    from marsvision.training.api import train

    result = train(None if resume is not None else config, resume=resume, argv=_command_line())
    _emit(result, as_json)


Resume = Annotated[Path | None, typer.Option(help="Run directory (or checkpoint) to continue.")]


def _training_command(name: str, summary: str) -> None:
    """Register a command that trains from a recipe: ``pretrain`` and ``train`` differ in the methods they take."""

    def command(
        recipe: Recipe = None,
        overrides: Overrides = None,
        resume: Resume = None,
        device: Device = None,
        devices: Devices = None,
        precision: Precision = None,
        runs_root: RunsRoot = None,
        print_config: PrintConfig = False,
        as_json: JsonFlag = False,
    ) -> None:
        extra = _trainer_overrides(overrides, device, devices, precision, runs_root)
        _run_training(name, recipe, extra, resume, print_config, as_json)

    command.__doc__ = summary
    app.command(name, context_settings=OVERRIDES_ACCEPTED)(command)


_training_command("pretrain", "Contrastive (SimCLR) pretraining of an encoder on unlabeled images (-r RECIPE).")
_training_command(
    "train",
    "Train a segmentation or classification model from a recipe (-r RECIPE), then evaluate it on the test split.",
)


@app.command()
def evaluate(
    target: Annotated[Path, typer.Argument(help="Run directory or checkpoint file.")],
    split: Annotated[str | None, typer.Option(help="Split to evaluate (default: the run's eval split).")] = None,
    data_root: Annotated[str | None, typer.Option(help="Dataset root, if it moved since training.")] = None,
    tta: Annotated[
        str | None, typer.Option(help="Test-time augmentation: flip or none (default: the run's own).")
    ] = None,
    device: Device = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a trained checkpoint on a split (e.g. the official MSL test split with --split test)."""
    from marsvision.data.errors import UnknownSplitError
    from marsvision.training.api import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(target, split=split, data_root=data_root, device=device, tta=tta)
    except UnknownSplitError as error:
        if split is None:
            raise  # the run's own split: its config says which
        raise UnknownSplitError(split, error.accepted, key="--split") from error
    _emit(result, as_json)


@app.command(context_settings=OVERRIDES_ACCEPTED)
def sweep(
    recipe: Recipe = None,
    overrides: Overrides = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds (default: the recipe's sweep.seeds).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Sweep directory (default runs/<recipe>-sweep-<time>).")] = None,
    device: Device = None,
    devices: Devices = None,
    precision: Precision = None,
    runs_root: RunsRoot = None,
    print_config: PrintConfig = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a recipe (-r RECIPE) over its grid (e.g. label fractions × init) and seeds; report mean ± std."""
    from marsvision.training.config import ConfigError, load_config

    extra = _trainer_overrides(overrides, device, devices, precision, runs_root)
    recipe = _recipe_or_default("sweep", recipe, extra)
    try:
        seed_list = [int(s) for s in seeds.split(",")] if seeds else None
    except ValueError as error:
        raise ConfigError(f"--seeds {seeds!r}: give comma-separated integers, e.g. --seeds 0,1,2") from error
    if print_config:
        _print_config(load_config(recipe, extra), as_json)
        return
    from marsvision.training.sweep import run_sweep

    _emit(run_sweep(recipe, extra, seeds=seed_list, out=out, argv=_command_line()), as_json)


@app.command()
def predict(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    out: Annotated[Path, typer.Option(help="Output folder for label PNGs, overlays and areas.csv.")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="marsvision checkpoint (.ckpt) or a run directory (its best checkpoint).")
    ] = None,
    onnx: Annotated[Path | None, typer.Option(help="Exported ONNX model instead of a checkpoint.")] = None,
    tta: Annotated[str | None, typer.Option(help="Test-time augmentation: flip.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 4,
    tile: Annotated[
        int | None,
        typer.Option(
            help="Tile side in input pixels; windows are resized to the training size (default: resize whole)."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the predictions an earlier run left in --out.")
    ] = False,
    device: Device = None,
    as_json: JsonFlag = False,
) -> None:
    """Predict label maps (or classes) for images; skips unreadable files and lists them (exit status 1)."""
    from marsvision.inference.predict import predict_paths

    result = predict_paths(
        inputs,
        out=out,
        checkpoint=checkpoint,
        onnx=onnx,
        tta=tta,
        batch_size=batch_size,
        tile=tile,
        device=device,
        overwrite=overwrite,
    )
    _emit(result, as_json)
    if result.get("failed"):
        raise typer.Exit(code=EXIT_PARTIAL)


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Option(help="marsvision checkpoint (.ckpt).")],
    onnx: Annotated[Path, typer.Option(help="Output .onnx path.")],
    dynamic_batch: Annotated[bool, typer.Option(help="Allow any batch size.")] = False,
    fp16: Annotated[bool, typer.Option(help="Store weights in float16.")] = False,
    tolerance: Annotated[float, typer.Option(help="Maximum abs difference to PyTorch allowed.")] = 1e-3,
    as_json: JsonFlag = False,
) -> None:
    """Export a checkpoint to ONNX and check onnxruntime's output against PyTorch's."""
    from marsvision.inference.export import export_onnx

    result = export_onnx(checkpoint, onnx, dynamic_batch=dynamic_batch, fp16=fp16, tolerance=tolerance)
    _emit(result, as_json)
    if not result["passed"]:
        raise typer.Exit(code=EXIT_PARTIAL)


def _comparison_folder(targets: list[Path]) -> Path:
    """A new folder next to the first target for a comparison's figures (never inside a run)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = targets[0].resolve().parent / f"compare-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = folder.with_name(f"compare-{stamp}-{suffix}")
    return folder


@app.command()
def report(
    targets: Annotated[list[Path], typer.Argument(help="Run or sweep directory (several runs with --compare).")],
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Compare runs or sweeps: per-class accuracy/IoU side by side (B-cls Fig. 8); when every run "
            "has features, one t-SNE figure (B-seg Fig. 12); for two classification runs, the baseline first, "
            "the images the second gets right and the first wrong, and the second's failures (B-cls Figs 9-10).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="With --compare: the folder for the figures (default: a new compare-<time> folder)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a self-contained HTML page and a Markdown summary of a run or sweep from its logs."""
    from marsvision.evaluation.report import (
        write_classification_examples,
        write_per_class_comparison,
        write_report,
        write_tsne_comparison,
    )

    for target in targets:
        if not target.is_dir():
            raise FileNotFoundError(f"{target}: no such run or sweep directory")
    if compare:
        if len(targets) < 2:
            raise ValueError("--compare needs at least two run or sweep directories")
        folder = out or _comparison_folder(targets)
        result = {"per_class": str(write_per_class_comparison(targets, folder / "per_class_comparison.png"))}
        if all((t / runfolder.FEATURES_FILE).is_file() for t in targets):
            result["tsne"] = str(write_tsne_comparison(targets, folder / "tsne_comparison.png"))
        if len(targets) == 2 and all((t / runfolder.PREDICTIONS_FILE).is_file() for t in targets):
            examples = write_classification_examples(targets[0], targets[1], folder)
            result.update({name: str(path) for name, path in examples.items()})
        _emit(result, as_json)
        return
    if len(targets) != 1:
        raise ValueError("give one run or sweep directory, or several runs with --compare")
    html_path, md_path = write_report(targets[0])
    _emit({"html": str(html_path), "markdown": str(md_path)}, as_json)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data, runs and report.")] = Path("demo-output"),
    quick: Annotated[bool, typer.Option(help="Reduced sizes (what CI runs).")] = False,
    data: Annotated[
        str, typer.Option(help="synthetic (generated, the default) or shared (the real 256-px AI4Mars samples).")
    ] = "synthetic",
    as_json: JsonFlag = False,
) -> None:
    """The whole mission end to end on embedded data: pretrain, fine-tune, semi-supervised, predict, export, report."""
    from marsvision.demo import run_demo

    summary = run_demo(out, quick=quick, data=data, show_table=not as_json)
    if as_json:
        _emit(summary, as_json)


def _recipe_command(name: str, values: dict[str, Any]) -> str:
    """The command that runs a recipe: ``sweep`` for a grid, else ``pretrain`` or ``train`` by its method."""
    from marsvision.training.registry import method_class

    task = method_class(str(values.get("method", "seg-supervised"))).task
    single = f"marsvision {'pretrain' if task == 'pretrain' else 'train'} -r {name}"
    grid = (values.get("sweep") or {}).get("grid")
    return f"marsvision sweep -r {name}   (one point: {single})" if grid else single


def _show_recipe(name: str, as_json: bool) -> None:
    import yaml

    from marsvision.training.config import load_config, recipe_chain, to_dict

    chain = recipe_chain(name)
    config = to_dict(load_config(name))
    command = _recipe_command(name, config)
    if as_json:
        _emit({"name": name, "bases": chain[1:], "command": command, "config": config}, True)
        return
    lines = [f"recipe   {name}", f"base     {' → '.join(chain[1:]) or 'none'}", f"run with {command}", ""]
    typer.echo("\n".join(lines) + yaml.safe_dump(config, sort_keys=False).rstrip())


FIGURE_MENTION = re.compile(r"\bFigs?\.?\s+((?:\d+(?:\s*[-–]\s*\d+)?(?:\s*(?:,|and)\s*(?=\d))?)+)")
"""``Fig. 6``, ``Figs 3-9``, ``Figs 4-5 and 7-9``, ``Figs 11-13`` in a recipe's description."""


def figures_named(description: str) -> set[int]:
    """The figure numbers a recipe's description names, ranges expanded (``Figs 4-5 and 7`` → {4, 5, 7})."""
    numbers: set[int] = set()
    for mention in FIGURE_MENTION.finditer(description):
        for part in re.split(r"\s*(?:,|and)\s*", mention.group(1)):
            ends = [int(n) for n in re.split(r"\s*[-–]\s*", part.strip()) if n]
            numbers.update(range(ends[0], ends[-1] + 1))
    return numbers


@app.command()
def recipes(
    query: Annotated[
        str | None,
        typer.Argument(help="A recipe name (shows it resolved, with its base and command) or a word to search for."),
    ] = None,
    table: Annotated[str | None, typer.Option(help="Only the recipes behind a paper table, e.g. --table 8.")] = None,
    figure: Annotated[
        int | None, typer.Option(help="Only the recipes behind a paper figure, e.g. --figure 12 (both papers).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the bundled recipes, one line each; show one resolved; or find those of a table, a figure or a word."""
    from marsvision.training.config import list_recipes

    listing = list_recipes()
    if query is not None and query in listing:
        _show_recipe(query, as_json)
        return
    if query is not None:
        word = query.lower()
        listing = {n: d for n, d in listing.items() if word in n.lower() or word in d.lower()}
    if table is not None:
        pattern = re.compile(rf"\btables?\s+{re.escape(table)}\b", re.IGNORECASE)
        listing = {n: d for n, d in listing.items() if pattern.search(d)}
    if figure is not None:
        listing = {n: d for n, d in listing.items() if figure in figures_named(d)}
    if as_json:
        _emit(listing, True)
        return
    if not listing:
        asked = " and ".join(
            x for x in (query and repr(query), table and f"table {table}", figure and f"figure {figure}") if x
        )
        typer.echo(f"no bundled recipe matches {asked}", err=True)
        raise typer.Exit(code=EXIT_PARTIAL)
    width = max(len(name) for name in listing)
    for name, description in listing.items():
        typer.echo(f"{name:<{width}}  {description}")


@app.command()
def methods(
    task: Annotated[
        str | None, typer.Option(help="Only the methods of one task: pretrain, segmentation or classification.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the registered methods (the ``method:`` key): task, data streams, weighted loss parts, summary."""
    from marsvision.training.registry import method_class, method_names

    listing = {}
    for name in method_names():
        module_class = method_class(name)
        if task is None or module_class.task == task:
            listing[name] = {
                "task": module_class.task,
                "streams": list(module_class.streams),
                "loss_weights": dict(module_class.loss_weights),
                "summary": (module_class.__doc__ or "").strip().split("\n")[0],
            }
    if as_json:
        _emit(listing, True)
        return
    if not listing:
        typer.echo(f"no registered method has task {task!r}", err=True)
        raise typer.Exit(code=EXIT_PARTIAL)
    streams = {name: "+".join(info["streams"]) for name, info in listing.items()}
    width, streams_width = max(map(len, listing)), max(map(len, streams.values()))
    for name, info in listing.items():
        typer.echo(f"{name:<{width}}  {info['task']:<14}  {streams[name]:<{streams_width}}  {info['summary']}")


@app.command("model-info")
def model_info(
    name: Annotated[str, typer.Argument(help="Encoder name, e.g. r50_2x_sk1 or resnet18.")],
    classes: Annotated[int, typer.Option(help="Number of segmentation classes.")] = 6,
    head: Annotated[str, typer.Option(help="Segmentation head: paper or relu.")] = "paper",
    in_channels: Annotated[int, typer.Option(help="Input channels.")] = 3,
    as_json: JsonFlag = False,
) -> None:
    """Parameter counts of an encoder (+ head), with and without BatchNorm statistics."""
    from marsvision.models.counting import model_info as count
    from marsvision.models.heads import HeadVariant

    _emit(count(name, num_classes=classes, head=cast(HeadVariant, head), in_channels=in_channels), as_json)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Argument(help="New folder to write the dataset into.")],
    kind: Annotated[str, typer.Option(help="ai4mars (0.1 layout), ai4mars-0.6, msl-v1 or paired-folder.")] = "ai4mars",
    num_images: Annotated[int, typer.Option(help="Number of images.")] = 200,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Write a synthetic Mars-terrain dataset in the official on-disk layout."""
    from marsvision.data import synth

    if kind not in synth.SYNTHESIZERS:
        raise ValueError(f"unknown --kind {kind!r}; choose one of {', '.join(synth.SYNTHESIZERS)}")
    writer: Any = synth.SYNTHESIZERS[kind]
    _emit(writer(out, num_images=num_images, size=size, seed=seed), as_json)


@data_app.command("inspect")
def data_inspect(
    root: Annotated[Path, typer.Argument(help="Dataset root as downloaded.")],
    plot: Annotated[Path | None, typer.Option(help="Write the class distribution chart to this PNG.")] = None,
    class_mode: Annotated[
        str | None,
        typer.Option(help="Classes to count (terrain4, paper6, ...); paper 000's Fig. 6: paper6 with --rover msl."),
    ] = None,
    rover: Annotated[str | None, typer.Option(help="AI4Mars rover: msl, mer or all (default all).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Detect a dataset's format and report counts, class shares, missing masks and problems (exit 1 if any)."""
    from marsvision.data.inspect import inspect_dataset
    from marsvision.evaluation.plots import plot_dataset_classes

    options = {key: value for key, value in (("class_mode", class_mode), ("rover", rover)) if value is not None}
    info = inspect_dataset(root, options=options)
    if plot is not None:
        plot_dataset_classes(info, plot)
    _emit(info, as_json)
    if info["problems"]:
        raise typer.Exit(code=EXIT_PARTIAL)


def _is_usage_error(error: BaseException) -> bool:
    """A command-line parsing error (click's, which typer vendors): it knows its message and exit status."""
    return hasattr(error, "format_message") and hasattr(error, "exit_code")


def one_line(error: BaseException) -> str:
    """What ``marsvision: error:`` says: the message naming the file or key, on one line."""
    if _is_usage_error(error):
        message = str(error.format_message())  # type: ignore[attr-defined]
    elif isinstance(error, OSError) and error.strerror:  # raised by the system: name the file it was about
        message = error.strerror if error.filename is None else f"{error.filename}: {error.strerror}"
    elif isinstance(error, (ValueError, OSError)):
        message = str(error)
    else:
        message = f"unexpected {type(error).__name__}: {error} (--debug shows where)"
    return " ".join(message.split())


_COMMAND_LINE: ContextVar[list[str] | None] = ContextVar("marsvision_command_line", default=None)
"""The command line :func:`main` is running, as a run's ``meta.json`` records it; None outside ``main``."""


def _command_line() -> list[str]:
    """What a run records as its command: ``main``'s arguments (also when called from Python), else ``sys.argv``."""
    return list(_COMMAND_LINE.get() or sys.argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``marsvision`` console script; errors print one line, not a traceback.

    ``--verbose`` and ``--debug`` may be written anywhere on the line; they are moved in front of the command.
    Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, :mod:`marsvision.threads`) unless
    the environment says otherwise or the caller loaded torch already; nothing before this imports torch.
    """
    prefer_passive_openmp()
    args = list(sys.argv[1:] if argv is None else argv)
    flags = [a for a in args if a in GLOBAL_FLAGS]
    debug = "--debug" in flags
    command_line = _COMMAND_LINE.set(list(sys.argv) if argv is None else ["marsvision", *args])
    try:
        code = app(
            args=[*flags, *(a for a in args if a not in GLOBAL_FLAGS)], prog_name="marsvision", standalone_mode=False
        )
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("marsvision: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:
        if debug:
            raise
        if _is_usage_error(error):  # unknown option, missing argument, bad value: point at the command's help
            context = getattr(error, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            if one_line(error):  # empty when the help was shown instead (a command given no arguments)
                typer.echo(f"marsvision: error: {one_line(error)}{hint}", err=True)
            sys.exit(int(getattr(error, "exit_code", EXIT_ERROR)))
        typer.echo(f"marsvision: error: {one_line(error)}", err=True)
        sys.exit(EXIT_ERROR)
    finally:
        _COMMAND_LINE.reset(command_line)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
