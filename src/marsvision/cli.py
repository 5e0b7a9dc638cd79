"""The ``marsvision`` command: data tools, training, evaluation, prediction, export, reports, the demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from marsvision import runfolder

app = typer.Typer(
    name="marsvision",
    help="Few-label terrain segmentation and image classification for Mars rover imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

Recipe = Annotated[str, typer.Option("--recipe", "-r", help="Bundled recipe name or a YAML path.")]
Overrides = Annotated[
    list[str] | None,
    typer.Argument(help="Config overrides key.sub=value, e.g. optim.lr=0.01 data.root=/data."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else there.")]
Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda (overrides trainer.device).")]
Devices = Annotated[int | None, typer.Option(help="Devices per node; >1 trains with DDP.")]
Precision = Annotated[str | None, typer.Option(help="32, bf16-mixed or 16-mixed.")]
RunsRoot = Annotated[str | None, typer.Option(help="Folder that receives run directories (default runs/).")]


def _emit(result: dict[str, Any], as_json: bool) -> None:
    from marsvision.training.runs import global_rank

    if global_rank() != 0:
        return  # under DDP only the first process reports
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        for key, value in result.items():
            typer.echo(f"{key}: {value}")


def _trainer_overrides(
    overrides: list[str] | None,
    device: str | None,
    devices: int | None,
    precision: str | None,
    runs_root: str | None,
) -> list[str]:
    extra = list(overrides or [])
    for key, value in (
        ("trainer.device", device),
        ("trainer.devices", devices),
        ("trainer.precision", precision),
        ("runs_root", runs_root),
    ):
        if value is not None:
            extra.append(f"{key}={value}")
    return extra


def _quiet_for_json(as_json: bool) -> None:
    """With --json, stdout carries only the final JSON: progress and logs go to stderr."""
    if as_json:
        from marsvision.training.api import send_logs_to_stderr

        send_logs_to_stderr()


def _run_training(
    pretraining: bool,
    recipe: str | None,
    overrides: list[str],
    resume: Path | None,
    as_json: bool,
) -> None:
    from marsvision.training.api import train
    from marsvision.training.config import ConfigError, load_config
    from marsvision.training.registry import method_class

    _quiet_for_json(as_json)
    if resume is not None and overrides:
        raise ValueError(f"--resume continues {resume} with its saved config; drop the overrides {overrides}")
    config = load_config(recipe, overrides) if resume is None else None
    if config is not None and (method_class(config.method).task == "pretrain") != pretraining:
        command, other = ("pretrain", "train") if pretraining else ("train", "pretrain")
        raise ConfigError(
            f"method {config.method!r} (recipe {recipe}) is not for `marsvision {command}`: use `marsvision {other}`"
        )
    result = train(config, resume=resume, argv=sys.argv)
    _emit(result, as_json)


Resume = Annotated[Path | None, typer.Option(help="Run directory (or checkpoint) to continue.")]


def _training_command(name: str, pretraining: bool, default_recipe: str, summary: str) -> None:
    """Register a command that trains from a recipe: ``pretrain`` and ``train`` differ in the methods they take."""

    def command(
        recipe: Recipe = default_recipe,
        overrides: Overrides = None,
        resume: Resume = None,
        device: Device = None,
        devices: Devices = None,
        precision: Precision = None,
        runs_root: RunsRoot = None,
        as_json: JsonFlag = False,
    ) -> None:
        extra = _trainer_overrides(overrides, device, devices, precision, runs_root)
        _run_training(pretraining, recipe, extra, resume, as_json)

    command.__doc__ = summary
    app.command(name)(command)


_training_command(
    "pretrain", True, "simclr-ai4mars", "Contrastive (SimCLR) pretraining of an encoder on unlabeled images."
)
_training_command(
    "train",
    False,
    "finetune-ai4mars",
    "Train a segmentation or classification model from a recipe, then evaluate it on the test split.",
)


@app.command()
def evaluate(
    target: Annotated[Path, typer.Argument(help="Run directory or checkpoint file.")],
    split: Annotated[str | None, typer.Option(help="Split to evaluate (default: the run's eval split).")] = None,
    data_root: Annotated[str | None, typer.Option(help="Dataset root, if it moved since training.")] = None,
    device: Device = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a trained checkpoint on a split (e.g. the official MSL test split with --split test)."""
    from marsvision.training.api import evaluate_checkpoint

    _quiet_for_json(as_json)
    _emit(evaluate_checkpoint(target, split=split, data_root=data_root, device=device), as_json)


@app.command()
def sweep(
    recipe: Recipe = "goh-label-fractions",
    overrides: Overrides = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated seeds (default: the recipe's sweep.seeds).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Sweep directory (default runs/<recipe>-sweep-<time>).")] = None,
    device: Device = None,
    precision: Precision = None,
    runs_root: RunsRoot = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a recipe over its grid (e.g. label fractions × init) and seeds; report mean ± std."""
    from marsvision.training.sweep import run_sweep

    _quiet_for_json(as_json)
    extra = _trainer_overrides(overrides, device, None, precision, runs_root)
    seed_list = [int(s) for s in seeds.split(",")] if seeds else None
    _emit(run_sweep(recipe, extra, seeds=seed_list, out=out, argv=sys.argv), as_json)


@app.command()
def predict(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    out: Annotated[Path, typer.Option(help="Output folder for label PNGs, overlays and areas.csv.")],
    checkpoint: Annotated[Path | None, typer.Option(help="marsvision checkpoint (.ckpt).")] = None,
    onnx: Annotated[Path | None, typer.Option(help="Exported ONNX model instead of a checkpoint.")] = None,
    tta: Annotated[str | None, typer.Option(help="Test-time augmentation: flip.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 4,
    tile: Annotated[
        int | None,
        typer.Option(
            help="Tile side in input pixels; windows are resized to the training size (default: resize whole)."
        ),
    ] = None,
    device: Device = None,
    as_json: JsonFlag = False,
) -> None:
    """Predict label maps (or classes) for images; skips unreadable files and lists them."""
    from marsvision.inference.predict import predict_paths

    _quiet_for_json(as_json)
    result = predict_paths(
        inputs, out=out, checkpoint=checkpoint, onnx=onnx, tta=tta, batch_size=batch_size, tile=tile, device=device
    )
    _emit(result, as_json)
    if result.get("failed"):
        raise typer.Exit(code=1)


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

    _quiet_for_json(as_json)
    result = export_onnx(checkpoint, onnx, dynamic_batch=dynamic_batch, fp16=fp16, tolerance=tolerance)
    _emit(result, as_json)
    if not result["passed"]:
        raise typer.Exit(code=1)


@app.command()
def report(
    targets: Annotated[list[Path], typer.Argument(help="Run or sweep directory (several runs with --compare).")],
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Compare runs or sweeps: per-class accuracy/IoU side by side (B-cls Fig. 8) and, when every run "
            "has features, one t-SNE figure (B-seg Fig. 12).",
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="With --compare: the folder for the figures.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a self-contained HTML page and a Markdown summary of a run or sweep from its logs."""
    from marsvision.evaluation.report import write_per_class_comparison, write_report, write_tsne_comparison

    if compare:
        if len(targets) < 2:
            raise typer.BadParameter("--compare needs at least two run or sweep directories")
        folder = out or targets[0] / runfolder.FIGURES_DIR
        result = {"per_class": str(write_per_class_comparison(targets, folder / "per_class_comparison.png"))}
        if all((t / runfolder.FEATURES_FILE).is_file() for t in targets):
            result["tsne"] = str(write_tsne_comparison(targets, folder / "tsne_comparison.png"))
        _emit(result, as_json)
        return
    if len(targets) != 1:
        raise typer.BadParameter("give one run or sweep directory, or several runs with --compare")
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

    _quiet_for_json(as_json)
    summary = run_demo(out, quick=quick, data=data, show_table=not as_json)
    if as_json:
        _emit(summary, as_json)


@app.command()
def recipes(as_json: JsonFlag = False) -> None:
    """List the bundled recipes, one line each."""
    from marsvision.training.config import list_recipes

    listing = list_recipes()
    if as_json:
        _emit(listing, True)
        return
    width = max((len(name) for name in listing), default=0)
    for name, description in listing.items():
        typer.echo(f"{name:<{width}}  {description}")


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

    options: dict[str, Any] = {"num_images": num_images, "size": size, "seed": seed}
    if kind == "ai4mars-0.6":
        kind, options["release"] = "ai4mars", "0.6"
    if kind not in synth.SYNTHESIZERS:
        raise ValueError(f"unknown --kind {kind!r}; choose one of {', '.join([*synth.SYNTHESIZERS, 'ai4mars-0.6'])}")
    writer: Any = synth.SYNTHESIZERS[kind]
    _emit(writer(out, **options), as_json)


@data_app.command("inspect")
def data_inspect(
    root: Annotated[Path, typer.Argument(help="Dataset root as downloaded.")],
    plot: Annotated[Path | None, typer.Option(help="Write the class distribution chart to this PNG.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Detect a dataset's format and report counts, class shares, missing masks and problems."""
    from marsvision.data.inspect import inspect_dataset
    from marsvision.evaluation.plots import plot_dataset_classes

    info = inspect_dataset(root)
    if plot is not None:
        plot_dataset_classes(info, plot)
    _emit(info, as_json)


def main() -> None:
    """Entry point of the ``marsvision`` console script; errors print one line, not a traceback."""
    from marsvision.data.errors import DatasetError
    from marsvision.training.config import ConfigError

    try:
        app()
    except (ConfigError, DatasetError, FileNotFoundError, ValueError) as error:
        typer.echo(f"marsvision: error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
