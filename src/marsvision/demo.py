"""``marsvision demo``: the whole mission end to end on data it generates itself (or the shared real samples).

Synthetic AI4Mars-like and MSL-like sets → SimCLR pretraining of a small encoder → fine-tuning at two label
fractions with and without pretraining → the three-stage semi-supervised segmentation → the semi-supervised
classifier → prediction on a few images → ONNX export with parity check → HTML reports. Sizes are chosen so
that the full demo finishes in under 10 minutes on 2 CPU cores and ``--quick`` (what CI runs) in about two.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marsvision import runfolder
from marsvision.data.synth import synthesize_ai4mars, synthesize_msl_v1
from marsvision.evaluation.report import write_report
from marsvision.evaluation.runlogs import read_eval
from marsvision.inference.export import export_onnx
from marsvision.inference.predict import predict_paths
from marsvision.training import runs
from marsvision.training.api import train
from marsvision.training.config import load_config
from marsvision.training.data import SHARED_DATA_ENV, existing_root, resolve_root
from marsvision.training.sweep import run_sweep

SHARED_FOLDER = "{shared}/ai4mars-msl-256-train"


@dataclass(frozen=True)
class DemoSize:
    """How big each step of the demo is."""

    segmentation_images: int
    classification_images: int
    image_size: int
    pretrain_epochs: int
    finetune_epochs: int
    stage_epochs: tuple[int, int, int]
    classification_epochs: int


FULL = DemoSize(160, 240, 64, 30, 8, (3, 3, 3), 4)
QUICK = DemoSize(40, 96, 32, 2, 1, (1, 1, 1), 1)


def _common(out: Path, size: DemoSize) -> list[str]:
    return [
        f"runs_root={out / 'runs'}",
        f"data.image_size={size.image_size}",
        "trainer.device=cpu",
        "trainer.early_stopping_patience=null",
    ]


def _log(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def run_demo(out: Path, *, quick: bool = False, data: str = "synthetic", show_table: bool = True) -> dict[str, Any]:
    """Run every step into ``out`` (replaced if it exists); return the summary, and print it as a table."""
    started = time.perf_counter()
    size = QUICK if quick else FULL
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    common = _common(out, size)
    if data not in ("synthetic", "shared"):
        raise ValueError(f"--data must be synthetic or shared, got {data!r}")
    use_shared = data == "shared"
    if use_shared:
        _log(f"segmentation data: real AI4Mars samples in {existing_root(SHARED_FOLDER)} (${SHARED_DATA_ENV})")
        seg_data = [
            "data.dataset=paired-folder",
            f"data.root={SHARED_FOLDER}",
            "data.class_mode=terrain4",
            "data.test_holdout=200",
            "data.label_count=null",
        ]
        seg_source = "real AI4Mars 256-px samples (shared data)"
    else:
        _log("segmentation data: synthetic AI4Mars-like set (official 0.1 layout)")
        ai4mars = out / "data" / "ai4mars"
        synthesize_ai4mars(ai4mars, num_images=size.segmentation_images, size=2 * size.image_size, seed=0)
        seg_data = ["data.dataset=ai4mars", f"data.root={ai4mars}", "data.class_mode=paper6"]
        seg_source = "synthetic AI4Mars-like (generated)"
    msl = out / "data" / "msl-v1"
    synthesize_msl_v1(msl, num_images=size.classification_images, size=2 * size.image_size, seed=0)

    _log("1/6 SimCLR pretraining of a small SK-ResNet encoder")
    pretrain = train(
        load_config("demo-simclr", [*common, *seg_data, f"trainer.max_epochs={size.pretrain_epochs}"]),
        argv=["marsvision", "demo"],
    )
    _log("2/6 fine-tuning at two label fractions, pretrained vs random init")
    sweep = run_sweep(
        "demo-label-fractions",
        [*common, *seg_data, f"trainer.max_epochs={size.finetune_epochs}"],
        out=out / "runs" / "demo-label-fractions",
        argv=["marsvision", "demo"],
    )
    _log("3/6 semi-supervised segmentation: memory-bank contrast, pseudo labels, three stages")
    stages = ",".join(str(e) for e in size.stage_epochs)
    semiseg = train(
        load_config(
            "demo-semiseg",
            [*common, *seg_data, "data.class_mode=terrain4", f"semiseg.stage_epochs=[{stages}]"],
        ),
        argv=["marsvision", "demo"],
    )
    _log("4/6 semi-supervised classification on MSL-like images")
    classification = train(
        load_config(
            "demo-classification",
            [*common, f"data.root={msl}", f"trainer.max_epochs={size.classification_epochs}"],
        ),
        argv=["marsvision", "demo"],
    )
    _log("5/6 prediction and ONNX export of the best pretrained fine-tuned model")
    best = max(
        (row for row in _rows(sweep) if row["weights"] is not None),
        key=lambda row: row["metrics"].get("acc") or 0.0,
    )
    images = _sample_images(out, seg_data, use_shared)
    checkpoint = runfolder.best_checkpoint(Path(sweep["sweep_dir"]) / best["run_dir"])
    predictions = predict_paths([str(p) for p in images], out=out / "predictions", checkpoint=checkpoint)
    onnx = export_onnx(checkpoint, out / "model.onnx")
    _log("6/6 reports")
    reports = {
        "sweep": str(write_report(Path(sweep["sweep_dir"]))[0]),
        "semiseg": str(write_report(Path(semiseg["run_dir"]))[0]),
        "classification": str(write_report(Path(classification["run_dir"]))[0]),
    }
    table = [
        {
            "step": f"fine-tune {row['label_fraction']:.0%} {'pretrained' if row['weights'] else 'random init'}",
            "metric": "pixel acc",
            "value": row["metrics"].get("acc"),
            "smoke_test": smoke_test_reason(Path(sweep["sweep_dir"]) / row["run_dir"], quick),
        }
        for row in _rows(sweep)
    ]
    table.append(
        {
            "step": "semi-supervised segmentation",
            "metric": "mIoU",
            "value": semiseg["metrics"].get("miou"),
            "smoke_test": smoke_test_reason(Path(semiseg["run_dir"]), quick),
        }
    )
    table.append(
        {
            "step": "semi-supervised classifier",
            "metric": "top-1",
            "value": classification["metrics"].get("top1"),
            "smoke_test": smoke_test_reason(Path(classification["run_dir"]), quick),
        }
    )
    summary = {
        "pretraining_verdict": pretraining_verdict(_rows(sweep), Path(pretrain["run_dir"])),
        "segmentation_data": seg_source,
        "pretrain_run": pretrain["run_dir"],
        "table": table,
        "predictions": str(out / "predictions"),
        "predicted_images": predictions.get("written"),
        "onnx": str(out / "model.onnx"),
        "onnx_max_abs_diff": onnx["max_abs_diff"],
        "reports": reports,
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    if show_table:
        print(closing_table(summary), flush=True)
    return summary


def _rows(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    rows: list[dict[str, Any]] = json.loads((Path(sweep["sweep_dir"]) / runfolder.RESULTS_JSON).read_text())
    for row in rows:
        row["label_fraction"] = row["data.label_fraction"]
        row["weights"] = row["model.weights"]
    return rows


def _sample_images(out: Path, seg_data: list[str], use_shared: bool) -> list[Path]:
    folder = (
        Path(resolve_root(SHARED_FOLDER)) / "images"
        if use_shared
        else out / "data" / "ai4mars" / "msl" / "images" / "edr"
    )
    return sorted(folder.iterdir())[:4]


def pretraining_verdict(rows: list[dict[str, Any]], pretrain_run: Path) -> str:
    """One plain sentence: does the pretrained encoder beat random initialisation at every label fraction?

    Says which seeds it rests on and, when pretraining does not help, how far its contrastive loss fell (a loss
    that barely moved means the encoder learned little on this data).
    """
    by_fraction: dict[float, dict[bool, list[float]]] = {}
    for row in rows:
        accuracy = row["metrics"].get("acc")
        if accuracy is not None:
            by_fraction.setdefault(row["label_fraction"], {}).setdefault(row["weights"] is not None, []).append(
                accuracy
            )
    seeds = sorted({row["seed"] for row in rows})
    worse = []
    for fraction, arms in sorted(by_fraction.items()):
        pretrained, random_init = arms.get(True, []), arms.get(False, [])
        if pretrained and random_init and sum(pretrained) / len(pretrained) < sum(random_init) / len(random_init):
            mean_p, mean_r = 100 * sum(pretrained) / len(pretrained), 100 * sum(random_init) / len(random_init)
            worse.append(f"{fraction:.0%} ({mean_p:.1f} % vs {mean_r:.1f} % random init)")
    seed_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    if not worse:
        return f"pretrained ≥ random init at every label fraction ({seed_text}, generated data)"
    losses = [r["loss"] for r in runs.read_metrics(pretrain_run) if r.get("split") == "train"]
    moved = f"; its SimCLR loss went from {losses[0]:.2f} to {losses[-1]:.2f}" if len(losses) > 1 else ""
    return (
        f"pretraining did not help at {', '.join(worse)} ({seed_text}, generated data): the demo pretrains a "
        f"tiny encoder for a few epochs on a few generated images{moved}; on the real images it helps (docs/results)"
    )


def smoke_test_reason(run_dir: Path, quick: bool) -> str | None:
    """Why a run's number in the closing table only shows that the step runs, or None when it may mean more.

    A model that predicts one class for every test pixel (or image) scores that class's share, whatever the
    method: every fine-tune row of such a demo shows the same number. A ``--quick`` run trains too briefly for
    any number to mean more.
    """
    evaluation = read_eval(run_dir / runfolder.EVAL_FILE)
    columns = evaluation.confusion_matrix.sum(axis=0)  # predictions per class
    predicted = [name for name, count in zip(evaluation.class_names, columns, strict=True) if count]
    if len(predicted) == 1:
        unit = "image" if evaluation.task == "classification" else "pixel"
        return f"predicts {predicted[0]} for every {unit}"
    return "--quick: a few epochs on tiny images" if quick else None


def closing_table(summary: dict[str, Any]) -> str:
    """The demo's closing table: one row per step, each smoke-test figure marked with its reason."""
    lines = ["", "marsvision demo — results (test split of the demo data)", "-" * 60]
    for row in summary["table"]:
        value = "n/a" if row["value"] is None else f"{100 * row['value']:.1f} %"
        note = f"  smoke test: {row['smoke_test']}" if row["smoke_test"] else ""
        lines.append(f"{row['step']:<42} {row['metric']:<10} {value:>7}{note}")
    if any(row["smoke_test"] for row in summary["table"]):
        lines.append("smoke test: the number shows that the step runs, not what the method can do")
    lines += [
        "-" * 60,
        summary["pretraining_verdict"],
        f"data: {summary['segmentation_data']}",
        f"predictions: {summary['predictions']}   ONNX: {summary['onnx']} (max |Δ| {summary['onnx_max_abs_diff']:.2e})",
        f"report: {summary['reports']['sweep']}",
        f"wall time: {summary['wall_time_s']} s",
    ]
    return "\n".join(lines)
