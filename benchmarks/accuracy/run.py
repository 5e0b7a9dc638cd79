"""``make bench-accuracy``: marsvision's recipes against peer pipelines, same splits, size and epoch budget.

Every (row, seed) runs in its own process (``--quick``: in the driver's) and leaves
``benchmarks/results/accuracy/runs/<row>/seed<k>.json``; a re-run skips what is there, so the full comparison may
span sessions. Pretraining runs once per pipeline and seed (``work/``, git-ignored, so not in a new clone) and is
reused by the rows that need it. A finished run or pretraining in ``work/`` is reused only while the library and
the run's recipes (``src/marsvision``) are what they were at the run's commit. At the end (and with ``--table``)
the per-seed files are summarised into ``benchmarks/results/accuracy.json`` and ``accuracy.md``: mean ± sample std
over seeds, in percent.

While a row runs nothing else should use the cores (its wall time is a timing); the load average before and after
each run is recorded with it. A file ``benchmarks/results/accuracy/PAUSE`` makes the driver wait before the next
run, so tests can run in between without being timed.

    python -m benchmarks.accuracy.run                 # every row, resuming
    python -m benchmarks.accuracy.run --quick         # minutes: two steps per run, one seed, a slice of the data
    python -m benchmarks.accuracy.run --only seg-100  # rows whose key contains this text (or is this text)
    python -m benchmarks.accuracy.run --seed 0        # one seed of every row
    python -m benchmarks.accuracy.run --table         # only summarise what is there
    python -m benchmarks.accuracy.run --any-machine   # also on a CPU without native bfloat16 (refused otherwise)
    python -m benchmarks.accuracy.run --dev-folder /tmp/dev-ai4mars  # the non-test images, to tune recipes on
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.accuracy.data import (
    cls_overrides,
    seg_overrides,
    write_quick_shared_data,
    write_segmentation_dev_folder,
)
from benchmarks.run_all import cpu_model
from marsvision.runfolder import META_FILE
from marsvision.training.config import recipe_chain
from marsvision.training.data import SHARED_DATA_ENV, resolve_root
from marsvision.training.precision import cpu_has_native_bf16

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PAUSE_FILE = RESULTS / "accuracy" / "PAUSE"
LIBRARY, RECIPES = "src/marsvision", "src/marsvision/recipes"


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a pipeline on a task at a label count, over seeds."""

    task: str  # "segmentation" | "classification"
    labels: int | str  # 100 | "all"
    pipeline: str
    """A peer's name (``seg-peer-scratch``, ...) or the name of a marsvision row (its recipe's, or a variant's)."""
    seeds: tuple[int, ...]
    epochs: int | None = None
    """Peers: epochs of the supervised (fine-tuning) stage; marsvision: None keeps the recipe's."""
    pretrain: str | None = None
    """Peers: ``"simclr"`` (any value: lightly's SimCLR is their one pretraining); marsvision: the pretraining
    recipe whose encoder ``model.weights`` gets."""
    pretrain_overrides: tuple[str, ...] = field(default_factory=tuple)
    """marsvision: overrides of that pretraining; rows with the same recipe and overrides share its runs."""
    recipe: str | None = None
    """marsvision rows: the recipe (default: ``pipeline``)."""
    overrides: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""

    @property
    def key(self) -> str:
        return f"{'seg' if self.task == 'segmentation' else 'cls'}-{self.labels}-{self.pipeline}"

    @property
    def is_peer(self) -> bool:
        return "-peer-" in self.pipeline


SEG_SEEDS_FEW, SEG_SEEDS_ALL, CLS_SEEDS = (0, 1, 2), (0, 1), (0, 1)
CE_SEEDS = (0, 1, 2)
"""The CE recipe and its peer: at two seeds they differ by less than one std, so a third tells more."""
SIMCLR_RECIPE = "simclr-resnet18-ai4mars128-cpu"
"""marsvision's pretraining of the segmenter's encoder, once per seed, shared by the rows that start from it."""
DENSECL_RECIPE = "densecl-resnet18-ai4mars128-cpu"
"""The same encoder pretrained with DenseCL's dense term added (issue #12: a dense objective for segmentation)."""
MSL_SIMCLR_RECIPE = "simclr-resnet18-msl128-cpu"
"""The classifier's encoder pretrained on MSL v1's train and val images, unlabeled (issue #12: use every image)."""
DENSECL_ON_STRIDE_32 = ("model.output_stride=32",)
"""DenseCL on the undilated map SimCLR pretrains on (DenseCL uses C5 too): the dense term is the only change."""
PAPER_002_LEARNING_RATES = ("optim.pretrained_backbone_lr=1e-6",)
"""Paper 002 §6.1: the pretrained backbone B and the heads H_s, H_u at 1e-6, the classifier H_cls at 1e-3 (at the
recipe's 1e-3 for all of them, H_u collapses within 20 steps and L_u then gives no gradient: docs/results)."""
TEST_IMAGES_UNLABELED = ("data.unlabeled_test_images=true",)
"""Transductive: every AI4Mars image in the unlabeled stream, as issue 12 asks (its SimCLR pretraining sees them
already; the MSL rows use the val images so)."""
RANDOM_INIT = ("model.weights=null",)
"""For the rows that measure a pretrained recipe from random init."""
CLS_PEER_EPOCHS = 20
"""cls-peer-ce's epochs (issue 12's torchvision script)."""
ADAM = ("optim.name=adam", "optim.weight_decay=0.0")
"""The CE recipe's optimiser as cls-peer-ce has it (the recipe's own is AdamW with weight decay 0.05)."""
CE_AT_PEER_EPOCHS = (f"trainer.max_epochs={CLS_PEER_EPOCHS}", *ADAM)
"""The CE recipe at cls-peer-ce's epochs and optimiser (the recipe's own 32 fill the peer's wall time)."""
QUICK_TRAINER = ("trainer.max_epochs=1", "trainer.limit_train_batches=2")
"""``--quick``'s marsvision runs, pretraining included: two steps of one epoch, each row end to end in seconds."""
QUICK_PRETRAIN_BATCH = ("data.batch_size=16",)
"""``--quick``'s pretraining batches: at the recipes' 64 its six pretrainings took 125 s of 414, at 16 they take 32."""
QUICK_PEER_IMAGES = 64
"""``--quick``'s peers train on the first 64 labeled images; the SimCLR peer pretrains on 64 (one batch)."""
BATCHED_SIMCLR_VIEWS = ("simclr.batched_views=true",)
"""That pretraining with its views made a batch at a time on the device (issue #16's fast setting)."""
NO_NATIVE_BF16 = (
    "[accuracy] this CPU has no native bfloat16 (avx512_bf16, amx_bf16, Arm's bf16): bf16 recipes would train in "
    "float32, slower and with other numerics than the rows' other seeds; run on such a machine, or pass --any-machine"
)
"""Why a full run stops before its first row on such a CPU (session 14's AVX2 machine ran Method B 3.7x slower)."""
ROWS: tuple[Row, ...] = (
    Row("segmentation", 100, "seg-peer-scratch", SEG_SEEDS_FEW, epochs=45),
    Row("segmentation", 100, "seg-peer-simclr", SEG_SEEDS_FEW, epochs=45, pretrain="simclr"),
    Row("segmentation", 100, "best-seg-100labels-cpu", SEG_SEEDS_FEW, pretrain=SIMCLR_RECIPE),
    Row(
        "segmentation",
        100,
        "seg-peer-scratch-long",
        SEG_SEEDS_FEW,
        epochs=240,
        note="seg-peer-scratch for about best-seg-100labels-cpu's wall time, its pretraining included (~1,100 s)",
    ),
    Row(
        "segmentation",
        100,
        "seg-supervised-100labels-cpu",
        SEG_SEEDS_FEW,
        recipe="best-seg-100labels-cpu",
        overrides=("method=seg-supervised", *RANDOM_INIT),
        note="the best recipe's network and schedule, labeled images only, random init",
    ),
    Row(
        "segmentation",
        100,
        "best-seg-100labels-cpu-batched-views",
        SEG_SEEDS_ALL,  # the first two of the recipe row's three seeds: its pretraining is the all-label row's
        recipe="best-seg-100labels-cpu",
        pretrain=SIMCLR_RECIPE,
        pretrain_overrides=BATCHED_SIMCLR_VIEWS,
        note="best-seg-100labels-cpu after SimCLR pretraining with batched views, seeds 0 and 1 (issue #16)",
    ),
    Row(
        "segmentation",
        100,
        "best-seg-100labels-cpu-densecl",
        SEG_SEEDS_FEW,
        recipe="best-seg-100labels-cpu",
        pretrain=DENSECL_RECIPE,
        note="best-seg-100labels-cpu after DenseCL pretraining (on the stride-16 map) instead of SimCLR",
    ),
    Row(
        "segmentation",
        100,
        "best-seg-100labels-cpu-simclr-os16",
        SEG_SEEDS_FEW,
        recipe="best-seg-100labels-cpu",
        pretrain=SIMCLR_RECIPE,
        pretrain_overrides=("model.output_stride=16",),
        note="SimCLR pretrained on the stride-16 map too: DenseCL's row minus its dense term",
    ),
    Row(
        "segmentation",
        100,
        "best-seg-100labels-cpu-densecl-os32",
        SEG_SEEDS_FEW,
        recipe="best-seg-100labels-cpu",
        pretrain=DENSECL_RECIPE,
        pretrain_overrides=DENSECL_ON_STRIDE_32,
        note="best-seg-100labels-cpu after DenseCL on the stride-32 map SimCLR uses: its row plus the dense term",
    ),
    Row(
        "segmentation",
        100,
        "best-seg-100labels-cpu-test-unlabeled",
        SEG_SEEDS_FEW,
        recipe="best-seg-100labels-cpu",
        pretrain=SIMCLR_RECIPE,
        overrides=TEST_IMAGES_UNLABELED,
        note="best-seg-100labels-cpu with the 200 test images, without labels, in UniMatch's unlabeled stream too",
    ),
    Row("segmentation", "all", "seg-peer-scratch", SEG_SEEDS_ALL, epochs=15),
    Row("segmentation", "all", "seg-peer-simclr", SEG_SEEDS_ALL, epochs=15, pretrain="simclr"),
    Row("segmentation", "all", "best-seg-all-cpu", SEG_SEEDS_ALL, pretrain=SIMCLR_RECIPE),
    Row(
        "segmentation",
        "all",
        "seg-peer-scratch-long",
        SEG_SEEDS_ALL,
        epochs=30,
        note="seg-peer-scratch for about best-seg-all-cpu's wall time, its pretraining included (~1,100 s)",
    ),
    Row(
        "segmentation",
        "all",
        "seg-supervised-all-cpu",
        SEG_SEEDS_ALL,
        recipe="best-seg-all-cpu",
        overrides=RANDOM_INIT,
        note="best-seg-all-cpu from random init",
    ),
    Row(
        "segmentation",
        "all",
        "best-seg-all-cpu-batched-views",
        SEG_SEEDS_ALL,
        recipe="best-seg-all-cpu",
        pretrain=SIMCLR_RECIPE,
        pretrain_overrides=BATCHED_SIMCLR_VIEWS,
        note="best-seg-all-cpu after SimCLR pretraining with batched views (issue #16's accuracy check)",
    ),
    Row(
        "segmentation",
        "all",
        "best-seg-all-cpu-densecl",
        SEG_SEEDS_ALL,
        recipe="best-seg-all-cpu",
        pretrain=DENSECL_RECIPE,
        note="best-seg-all-cpu after DenseCL pretraining (on the stride-16 map) instead of SimCLR",
    ),
    Row(
        "segmentation",
        "all",
        "best-seg-all-cpu-densecl-os32",
        SEG_SEEDS_ALL,
        recipe="best-seg-all-cpu",
        pretrain=DENSECL_RECIPE,
        pretrain_overrides=DENSECL_ON_STRIDE_32,
        note="best-seg-all-cpu after DenseCL on the stride-32 map",
    ),
    Row("classification", "all", "cls-peer-ce", CE_SEEDS, epochs=CLS_PEER_EPOCHS),
    Row(
        "classification",
        "all",
        "cls-peer-ce-long",
        CLS_SEEDS,
        epochs=74,
        note="cls-peer-ce for about best-cls-msl128-cpu's wall time, its pretraining included (~6,200 s)",
    ),
    Row("classification", "all", "cls-ce-msl128-cpu", CE_SEEDS),
    Row(
        "classification",
        "all",
        "cls-ce-msl128-cpu-20-epochs",
        CE_SEEDS,
        recipe="cls-ce-msl128-cpu",
        overrides=CE_AT_PEER_EPOCHS,
        note="cls-ce-msl128-cpu-adam at the peer's 20 epochs instead of the 32 that fill its wall time",
    ),
    Row(
        "classification",
        "all",
        "cls-ce-msl128-cpu-adam",
        CE_SEEDS,
        recipe="cls-ce-msl128-cpu",
        overrides=ADAM,
        note="cls-ce-msl128-cpu with Adam and no weight decay (the recipe until session 12), as the peer trains",
    ),
    Row(
        "classification",
        "all",
        "cls-ce-msl128-cpu-float32",
        CLS_SEEDS,
        recipe="cls-ce-msl128-cpu",
        overrides=(*CE_AT_PEER_EPOCHS, 'trainer.precision="32"'),
        note="cls-ce-msl128-cpu-20-epochs in float32: what bf16 costs or gains (issue #16's accuracy check)",
    ),
    Row("classification", "all", "best-cls-msl128-cpu", CLS_SEEDS, pretrain=MSL_SIMCLR_RECIPE),
    Row(
        "classification",
        "all",
        "cls-fixmatch-msl128-cpu",
        CLS_SEEDS,
        recipe="best-cls-msl128-cpu",
        overrides=RANDOM_INIT,
        note="best-cls-msl128-cpu (FixMatch) from random init",
    ),
    Row(
        "classification",
        "all",
        "cls-fixmatch-msl128-cpu-batched-views",
        CLS_SEEDS,
        recipe="best-cls-msl128-cpu",
        overrides=(*RANDOM_INIT, "classification.batched_views=true"),
        note="cls-fixmatch-msl128-cpu with its views made a batch at a time on the device (issue #16's accuracy check)",
    ),
    Row("classification", "all", "wang-cls-msl128-ours-cpu", CLS_SEEDS),
    Row(
        "classification",
        "all",
        "cls-ce-msl128-cpu-simclr",
        CLS_SEEDS,
        recipe="cls-ce-msl128-cpu",
        overrides=CE_AT_PEER_EPOCHS,
        pretrain=MSL_SIMCLR_RECIPE,
        note="cls-ce-msl128-cpu-20-epochs from best-cls-msl128-cpu's SimCLR encoder: the pretraining without FixMatch",
    ),
    Row(
        "classification",
        "all",
        "wang-cls-msl128-ours-cpu-simclr",
        CLS_SEEDS,
        recipe="wang-cls-msl128-ours-cpu",
        pretrain=MSL_SIMCLR_RECIPE,
        note="Method B from the same SimCLR encoder (paper 002 starts from MoCo v2 on ImageNet: +2.3 in its Table 4)",
    ),
    Row(
        "classification",
        "all",
        "wang-cls-msl128-ours-cpu-simclr-paper-lr",
        CLS_SEEDS,
        recipe="wang-cls-msl128-ours-cpu",
        pretrain=MSL_SIMCLR_RECIPE,
        overrides=PAPER_002_LEARNING_RATES,
        note="that row with paper 002's learning rates: B, H_s and H_u at 1e-6, only H_cls at 1e-3",
    ),
)
"""The rows in the order they run."""

PEER_PRETRAIN_EPOCHS = 20


def _run_file(row: Row, seed: int, out: Path) -> Path:
    return out / "runs" / row.key / f"seed{seed}.json"


def _labels_arg(row: Row) -> int | None:
    return None if row.labels == "all" else int(row.labels)


def _metrics(task: str, predictions: np.ndarray, truth: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    import torch

    from marsvision.evaluation.confusion import ConfusionMatrix
    from marsvision.evaluation.metrics import classification_metrics, segmentation_metrics

    confusion = ConfusionMatrix(len(class_names))
    confusion.update(
        pred=torch.from_numpy(predictions.astype(np.int64)), target=torch.from_numpy(truth.astype(np.int64))
    )
    matrix = confusion.compute(sync=False)
    if task == "segmentation":
        return segmentation_metrics(matrix, class_names)
    return classification_metrics(matrix, class_names)


def _percent(task: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The comparison's metrics, in percent: pixel acc, mIoU, per-class IoU; or top-1 and mean per-class acc."""
    if task == "segmentation":
        out = {"pixel_acc": 100 * metrics["acc"], "miou": 100 * metrics["miou"]}
        out.update({f"iou/{name}": 100 * value for name, value in metrics["iou"].items()})
        return out
    out = {"top1": 100 * metrics["top1"], "mean_class_acc": 100 * metrics["macc"]}
    per_class = metrics["per_class_accuracy"].items()
    out.update({f"acc/{name}": 100 * value for name, value in per_class if value is not None})  # None: not in test
    return out


def _peer_encoder(seed: int, images: list[Path], work: Path, epochs: int) -> tuple[dict[str, Any], float]:
    """The SimCLR-pretrained peer encoder of ``seed`` (cached in ``work``) and the wall time it took."""
    import torch

    from benchmarks.accuracy.peers import pretrain_simclr_peer

    path = work / f"peer-simclr-seed{seed}-e{epochs}.pt"
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        return saved["state_dict"], float(saved["wall_s"])
    state, wall = pretrain_simclr_peer(images, seed=seed, epochs=epochs)
    torch.save({"state_dict": state, "wall_s": wall}, path)
    return state, wall


def run_peer(row: Row, seed: int, work: Path, quick: bool) -> dict[str, Any]:
    """Train and test one peer pipeline for one seed in this process."""
    if row.epochs is None:
        raise ValueError(f"peer row {row.key} needs its epochs")
    from benchmarks.accuracy.data import classification_split, segmentation_split
    from benchmarks.accuracy.peers import train_cls_peer, train_seg_peer

    images_cap = QUICK_PEER_IMAGES if quick else None  # a list sliced [:None] is the whole list
    if row.task == "segmentation":
        split = segmentation_split(_labels_arg(row), quick)
        encoder, pretrain_wall = None, 0.0
        unlabeled = 0
        if row.pretrain is not None:
            epochs = 1 if quick else PEER_PRETRAIN_EPOCHS
            images = split.unlabeled[:images_cap]
            encoder, pretrain_wall = _peer_encoder(seed, images, work, epochs)
            unlabeled = len(images)
        output = train_seg_peer(
            split.train[:images_cap],  # type: ignore[arg-type]
            split.test_images,
            seed=seed,
            epochs=row.epochs,
            encoder_state=encoder,
        )
    else:
        split = classification_split()
        pretrain_wall, unlabeled = 0.0, 0
        output = train_cls_peer(
            split.train[:images_cap],  # type: ignore[arg-type]
            split.test_images,
            seed=seed,
            epochs=row.epochs,
            num_classes=len(split.class_names),
        )
    metrics = _metrics(row.task, output.predictions, split.test_labels, split.class_names)
    return {
        "metrics": _percent(row.task, metrics),
        "test_images": len(split.test_images),
        "test_total": metrics["total"],
        "wall_s": output.wall_s + pretrain_wall,
        "pretrain_wall_s": pretrain_wall,
        "images_seen": {"labeled": output.images_seen["labeled"], "unlabeled": unlabeled},
    }


def _marsvision(args: list[str], in_process: bool = False) -> dict[str, Any]:
    """Run a marsvision command with ``--json`` and return its result.

    ``in_process`` runs the CLI in this process (``--quick``: a new process's imports take longer than the run).
    """
    run = _cli_in_this_process if in_process else _cli_in_a_child
    returncode, stdout, stderr = run([*args, "--json"])
    if returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({returncode}):\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _cli_in_a_child(args: list[str]) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "marsvision.cli", *args], capture_output=True, text=True, cwd=ROOT)
    return done.returncode, done.stdout, done.stderr


def _cli_in_this_process(args: list[str]) -> tuple[int, str, str]:
    """The command as a child would run it: what a run changes of the environment and torch's thread count is
    put back afterwards, and an interrupted command interrupts the driver."""
    import torch

    from marsvision.cli import EXIT_INTERRUPTED, main

    stdout, stderr = io.StringIO(), io.StringIO()
    code: object = 0
    environment, threads = dict(os.environ), torch.get_num_threads()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(args)
        except SystemExit as exit_:  # main always exits, with 0 on success
            code = exit_.code
        finally:
            os.environ.clear()
            os.environ.update(environment)
            torch.set_num_threads(threads)
    if code == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    returncode = code if isinstance(code, int) else 0 if code is None else 1
    return returncode, stdout.getvalue(), stderr.getvalue()


def trained_by_this_library(run_dir: Path, repo: Path = ROOT) -> bool:
    """Whether the run's commit (its ``meta.json``) has the library and the run's recipes of ``repo``'s HEAD.

    The library is ``src/marsvision`` without its recipes; of those, only the run's recipe and the recipes it
    builds on count, so editing another recipe keeps the run (an hour of pretraining) fresh. Benchmarks, docs and
    tests do not count. A run with no commit, or one ``repo`` does not know, counts as stale; a run whose command
    names no recipe, or one HEAD no longer has, depends on every recipe.
    """
    meta = json.loads((run_dir / META_FILE).read_text()) if (run_dir / META_FILE).is_file() else {}
    commit = meta.get("git_commit")
    if commit is None:
        return False
    depends_on = [[LIBRARY, f":(exclude){RECIPES}"], _recipe_files(meta.get("command") or [])]
    unchanged = (
        subprocess.run(["git", "diff", "--quiet", commit, "HEAD", "--", *paths], cwd=repo, capture_output=True)
        for paths in depends_on
    )
    return all(done.returncode == 0 for done in unchanged)


def _recipe_files(command: list[str]) -> list[str]:
    """The recipe files (repository paths) a marsvision command's ``-r`` recipe is built from."""
    try:
        chain = recipe_chain(command[command.index("-r") + 1])
    except (IndexError, ValueError):  # no -r, or a recipe HEAD no longer has (ConfigError is a ValueError)
        return [RECIPES]
    return [name if Path(name).suffix in (".yaml", ".yml") else f"{RECIPES}/{name}.yaml" for name in chain]


def _finished_run(work: Path, name: str, repo: Path = ROOT) -> dict[str, Any] | None:
    """The result of the latest finished training run called ``name`` in ``work``, if this library trained it.

    A row whose training finished but whose summary failed afterwards is then summarised without training again;
    a run from other library code is trained again (and said so), not brought back.
    """
    finished = sorted(path for path in work.glob(f"{name}-*/result.json") if (path.parent / "eval.json").is_file())
    if not finished:
        return None
    if not trained_by_this_library(finished[-1].parent, repo):
        print(f"[accuracy] {finished[-1].parent.name}: trained by other library code, training again", flush=True)
        return None
    return dict(json.loads(finished[-1].read_text()))


def pretraining_cache(row: Row, seed: int, work: Path, quick: bool) -> Path:
    """Where the result of ``row``'s pretraining for ``seed`` is kept: one file per recipe, overrides and seed."""
    variant = "".join(f"-{override.replace('=', '-')}" for override in row.pretrain_overrides)
    return work / f"{row.pretrain}{variant}-seed{seed}{'-quick' if quick else ''}.json"


def run_marsvision(row: Row, seed: int, work: Path, quick: bool) -> dict[str, Any]:
    """Pretrain (cached per recipe and seed) and train one marsvision recipe for one seed, via the CLI."""
    data = seg_overrides(_labels_arg(row), quick) if row.task == "segmentation" else cls_overrides()
    quick_trainer = list(QUICK_TRAINER) if quick else []
    pretrain_wall, pretrain_unlabeled, weights = 0.0, 0, []
    if row.pretrain is not None:
        cache = pretraining_cache(row, seed, work, quick)
        pretrained = json.loads(cache.read_text()) if cache.is_file() else None
        if pretrained is not None and not trained_by_this_library(Path(pretrained["run_dir"])):
            print(f"[accuracy] {cache.name}: pretrained by other library code, pretraining again", flush=True)
            pretrained = None
        if pretrained is None:
            pretrained = _marsvision(
                [
                    "pretrain",
                    "-r",
                    row.pretrain,
                    *data,
                    *row.pretrain_overrides,
                    f"seed={seed}",
                    f"runs_root={work}",
                    *quick_trainer,
                    *(QUICK_PRETRAIN_BATCH if quick else ()),
                ],
                in_process=quick,
            )
            cache.write_text(json.dumps(pretrained))
        pretrain_wall = float(pretrained["wall_time_s"])
        pretrain_unlabeled = int(pretrained["images_seen"]["unlabeled"])
        weights = [f"model.weights={pretrained['encoder']}"]
    result = _finished_run(work, f"{row.pipeline}-seed{seed}") or _marsvision(
        [
            "train",
            "-r",
            row.recipe or row.pipeline,
            *data,
            *row.overrides,
            *weights,
            f"seed={seed}",
            f"runs_root={work}",
            f"name={row.pipeline}-seed{seed}",
            *quick_trainer,
        ],
        in_process=quick,
    )
    evaluation = json.loads((Path(result["run_dir"]) / "eval.json").read_text())
    seen = result["images_seen"]
    return {
        "metrics": _percent(row.task, evaluation["metrics"]),
        "test_total": evaluation["metrics"]["total"],
        "wall_s": float(result["wall_time_s"]) + pretrain_wall,
        "pretrain_wall_s": pretrain_wall,
        "images_seen": {"labeled": seen["labeled"], "unlabeled": max(seen["unlabeled"], pretrain_unlabeled)},
        "run_dir": result["run_dir"],
    }


def run_one(row: Row, seed: int, out: Path, quick: bool) -> dict[str, Any]:
    """One (row, seed) in this process, with its timing context; the result file is written atomically."""
    from marsvision.atomic import atomic_write_text

    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = (run_peer if row.is_peer else run_marsvision)(row, seed, work, quick)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(cpu_after, cpu_before, strict=True))
    result.update(
        row=row.key,
        seed=seed,
        cpu_s=round(cpu, 1),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        threads=int(__import__("torch").get_num_threads()),
        cpu=cpu_model(),  # wall times compare only on one kind of CPU; bf16 recipes train in float32 without it
        native_bf16=cpu_has_native_bf16(),
        finished=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    path = _run_file(row, seed, out)
    atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def _mean_std(values: list[float]) -> dict[str, float | None]:
    """Unrounded: the JSON and the table each round once, from these (rounding twice moved 78.946 to 79.0)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def _rounded(value: Any, digits: int = 2) -> Any:
    """``value`` with every float in it rounded to ``digits`` decimals, for the JSON file."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item, digits) for item in value]
    return value


def summarise(rows: tuple[Row, ...], out: Path) -> dict[str, Any]:
    """``{"rows": [...], "not_run": [...]}`` from the per-seed files, ``not_run`` naming rows with no seed yet.

    Each row: mean ± sample std per metric, mean wall time, the images it saw, the CPU models its seeds ran on
    (where recorded), its note.
    """
    summary, not_run = [], []
    for row in rows:
        runs = [json.loads(p.read_text()) for s in row.seeds if (p := _run_file(row, s, out)).is_file()]
        if not runs:
            not_run.append(row.key)
            continue
        names = sorted({name for run in runs for name in run["metrics"]})
        summary.append(
            {
                "task": row.task,
                "labels": row.labels,
                "pipeline": row.pipeline,
                "seeds": [run["seed"] for run in runs],
                "metrics": {name: _mean_std([run["metrics"][name] for run in runs]) for name in names},
                "wall_s": statistics.fmean(run["wall_s"] for run in runs),
                "images_seen": runs[0]["images_seen"],
                "complete": len(runs) == len(row.seeds),
                "cpus": sorted({run["cpu"] for run in runs if "cpu" in run}),  # recorded since 2026-12-02
                "note": row.note,
            }
        )
    return {"rows": summary, "not_run": not_run}


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown tables, one per (task, label count)."""
    lines = ["# Accuracy: marsvision vs peer pipelines", ""]
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for entry in summary["rows"]:
        groups.setdefault((entry["task"], entry["labels"]), []).append(entry)
    for (task, labels), entries in groups.items():
        lines += [f"## {task}, {labels} labels", ""]
        keys = ["pixel_acc", "miou", "iou/soil", "iou/bedrock", "iou/sand", "iou/big rock"]
        if task == "classification":
            keys = ["top1", "mean_class_acc"]
        lines.append("| pipeline | seeds | " + " | ".join(keys) + " | wall s | labeled / unlabeled images |")
        lines.append("| --- " * (len(keys) + 4) + "|")
        for entry in entries:
            cells = []
            for key in keys:
                value = entry["metrics"].get(key)
                cells.append(
                    "–"
                    if value is None
                    else f"{value['mean']:.1f}" + (f" ± {value['std']:.1f}" if value["std"] is not None else "")
                )
            seen = entry["images_seen"]
            seeds = ",".join(map(str, entry["seeds"])) + ("" if entry["complete"] else " (incomplete)")
            if len(entry["cpus"]) > 1:  # wall times (and bf16 or not) differ between those machines
                seeds += f" ({len(entry['cpus'])} kinds of CPU)"
            lines.append(
                f"| {entry['pipeline']} | {seeds} | "
                + " | ".join(cells)
                + f" | {entry['wall_s']:.0f} | {seen['labeled']} / {seen['unlabeled']} |"
            )
        lines += [f"- {entry['pipeline']}: {entry['note']}" for entry in entries if entry["note"]]
        lines.append("")
    if summary.get("not_run"):
        lines += [f"Not run yet: {', '.join(summary['not_run'])}.", ""]
    return "\n".join(lines)


def write_summary(rows: tuple[Row, ...], out: Path, target: Path) -> dict[str, Any]:
    from marsvision.atomic import atomic_write_text

    summary = summarise(rows, out)
    rounded: dict[str, Any] = _rounded(summary)
    atomic_write_text(target / "accuracy.json", json.dumps(rounded, indent=1) + "\n")
    atomic_write_text(target / "accuracy.md", markdown(summary))
    return rounded


def _run_in_child(row: Row, seed: int, out: Path) -> str | None:
    """Run ``row`` for ``seed`` in a process of its own (its timing and memory its own); why it failed, if it did."""
    command = [sys.executable, "-m", "benchmarks.accuracy.run", "--one", row.key, str(seed), "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT)
    return None if done.returncode == 0 else f"exit status {done.returncode}"


def _run_here(row: Row, seed: int, out: Path) -> str | None:
    """``--quick``: run ``row`` in this process, whose imports would take a child longer than the row's two steps."""
    try:
        run_one(row, seed, out, quick=True)
    except (RuntimeError, ValueError, OSError) as error:  # a marsvision command that failed, or bad data
        return str(error)
    return None


def _wait_while_paused() -> None:
    while PAUSE_FILE.exists():
        time.sleep(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="two steps per run, first seed, a slice of the data, in a temp folder"
    )
    parser.add_argument(
        "--only", default="", help="run the row of this key, else the rows whose key contains this text"
    )
    parser.add_argument("--seed", type=int, default=None, help="run only this seed of the rows")
    parser.add_argument("--table", action="store_true", help="only write the summary of what has run")
    parser.add_argument(
        "--dev-folder", type=Path, help="link the segmentation images outside the test set here (for tuning) and exit"
    )
    parser.add_argument(
        "--any-machine",
        action="store_true",
        help="run full rows on a CPU without native bfloat16 too (their bf16 recipes then train in float32)",
    )
    parser.add_argument("--one", nargs=2, metavar=("ROW", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dev_folder:
        linked = write_segmentation_dev_folder(args.dev_folder)
        print(json.dumps({"dev_folder": str(args.dev_folder), "images": linked}))
        return 0
    rows = ROWS
    if args.quick:
        rows = tuple(replace(r, seeds=r.seeds[:1], epochs=1 if r.is_peer else None) for r in rows)
    out = args.out or (Path(tempfile.mkdtemp(prefix="accuracy-quick-")) if args.quick else RESULTS / "accuracy")
    if args.quick:  # the runs, and the marsvision commands they start, read the small copy
        os.environ[SHARED_DATA_ENV] = str(write_quick_shared_data(Path(resolve_root("{shared}")), out / "shared"))
    if args.one:
        row = next(r for r in rows if r.key == args.one[0])
        print(json.dumps(run_one(row, int(args.one[1]), out, args.quick), sort_keys=True))
        return 0
    if not args.table:
        # seed-major order: a first complete table (one seed per row) comes before the spread
        chosen = [row for row in rows if row.key == args.only] or [row for row in rows if args.only in row.key]
        pending = [
            (row, seed)
            for seed in sorted({s for row in rows for s in row.seeds})
            for row in chosen
            if seed in row.seeds and args.seed in (None, seed) and not _run_file(row, seed, out).is_file()
        ]
        if pending and not (args.quick or args.any_machine or cpu_has_native_bf16()):
            print(NO_NATIVE_BF16, file=sys.stderr)
            return 2
        for number, (row, seed) in enumerate(pending, start=1):
            _wait_while_paused()
            print(f"[accuracy] {number}/{len(pending)}: {row.key} seed {seed}", file=sys.stderr, flush=True)
            failure = _run_here(row, seed, out) if args.quick else _run_in_child(row, seed, out)
            if failure is not None:
                print(f"[accuracy] {row.key} seed {seed} failed: {failure}", file=sys.stderr)
            write_summary(rows, out, out if args.quick else RESULTS)
    summary = write_summary(rows, out, out if args.quick else RESULTS)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
