"""The GPU check: one prepared run that proves marsvision's paper-scale paths on a real GPU (issue 17).

    python3 benchmarks/gpu_check.py --wheels .whl --copy-to "$OUT"   # on the device machine (make gpu-check)
    python benchmarks/gpu_check.py --dry-run                        # the same code paths on the CPU, tiny sizes
    python benchmarks/gpu_check.py --only ddp_gather,onnx_export     # re-run steps, keep the others' results

Seven steps. Each is timed, its peak GPU memory is recorded (allocator statistics, reset between steps), and its
failure is caught and recorded: the run goes on with the next step and exits 1 at the end if any step failed.

1. ``environment``: torch, CUDA, cuDNN, NCCL, the GPU, bf16 support, package versions, onnxruntime providers;
2. ``finetune_step``: paper 000's fine-tuning step (``finetune-ai4mars``: r50_2x_sk1 + atrous head, 512², batch 8)
   in bf16-mixed with channels_last under Lightning, 20 timed steps; peak memory against the meta-device estimate
   of the fp32 step (``scaling``; 11.5 GiB in benchmarks/results/vm.md);
3. ``simclr_batch``: SimCLR with the paper's encoder (``simclr-ai4mars``: LARS, bf16): the largest batch per device
   that runs at 512² and at 224² (doubling, then bisection; out-of-memory caught), its images/s, the same step with
   lightly's projection head and ``NTXentLoss`` for the ratio, and a few steps of ``SimCLRModule`` under Lightning
   (it runs last, since its search stretches to the time left of the budget; results keep this order);
4. ``method_b_steps``: Method B segmentation (``wang-seg-ai4mars``: DeepLabv3+ R101, 512², batch 16, memory bank)
   with the memory-bank loss share (``membank.share_of_step``), and classification (``wang-cls-msl``: ResNet-50,
   224², the three streams) under Lightning;
5. ``cli_end_to_end``: ``marsvision train -r finetune-ai4mars256-cpu`` on the real 256-px AI4Mars folder (2 epochs,
   bf16-mixed, channels_last), ``marsvision evaluate`` and ``marsvision predict``, run in this process through the
   CLI so that the module's device can be read during each test pass; the checkpoint evaluated with the module on
   the GPU must equal its CPU evaluation within 1e-3;
6. ``ddp_gather``: two processes on the one GPU (NCCL if it allows two ranks on one device, else gloo): SimCLR's
   negatives and the memory bank's entries are gathered across ranks, i.e. the loss, the DDP gradients and the bank
   equal those of one process on the concatenated batch;
7. ``onnx_export``: ``marsvision export`` of step 5's checkpoint, then onnxruntime (CUDA provider if installed, else
   the CPU) against PyTorch on the GPU.

``--dry-run`` runs every step on the CPU with tiny sizes (small encoders, 32-64 px, batch 2, generated data, a
simulated out-of-memory limit for the batch search) in well under a minute; tests/benchmarks/test_gpu_check.py runs
it. Results: ``benchmarks/results/gpu.json`` and ``gpu.md`` (a dry run writes into a temporary folder unless
``--out`` is given), rewritten after every step. benchmarks/README.md ("The GPU check") says how to prepare the
device machine and which single command to run there.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import importlib
import importlib.util
import io
import json
import math
import multiprocessing
import os
import platform
import queue as queue_module
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# Idle OpenMP threads sleep instead of spinning (see run_all.py); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/gpu_check.py` puts benchmarks/, not the repo, on the path
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.common import (  # noqa: E402
    autocast,
    lightning_step_times,
    peak_bytes,
    selected_names,
    stats,
    sync,
    time_calls,
)
from benchmarks.report import _num  # noqa: E402
from benchmarks.run_all import cpu_model, finite, git_commit  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SITE = Path(tempfile.gettempdir()) / "marsvision-gpu-site"
"""Where ``--wheels`` installs the carried wheels (pip ``--target``)."""
DATA_NAME = "ai4mars-msl-256-train"
GPU_DATA = ROOT / ".gpu-data" / DATA_NAME
"""The copy of the real 256-px AI4Mars folder that ``make gpu-check-prepare`` makes for the device machine."""
TOLERANCE = 1e-3
"""Largest difference allowed between GPU and CPU metrics, and between onnxruntime's and PyTorch's logits."""
GATHER_TOLERANCE = 1e-4
"""Largest difference allowed between the two-process losses, gradients and banks and the one-process ones."""
PAPER_STEP_ESTIMATE_GIB = 11.5
"""The meta-device estimate of the paper's fine-tuning step (fp32, 512², batch 8) in benchmarks/results/vm.md."""
STEP_TITLES = {
    "environment": "1. environment",
    "finetune_step": "2. paper 000 fine-tuning step",
    "simclr_batch": "3. SimCLR: largest batch, images/s, lightly",
    "method_b_steps": "4. Method B steps (segmentation, classification)",
    "cli_end_to_end": "5. CLI train / evaluate / predict",
    "ddp_gather": "6. two-process DDP gathers",
    "onnx_export": "7. ONNX export and onnxruntime",
}
STEPS = tuple(STEP_TITLES)
RUN_ORDER = (*(name for name in STEPS if name != "simclr_batch"), "simclr_batch")
"""The batch search runs last: it is the one step that stretches to the time left (results keep the order above)."""
SEARCH_RESERVE_S = 45.0
"""Time the batch search leaves before the deadline for the lightly comparison and the Lightning steps."""


@dataclass(frozen=True)
class Plan:
    """The sizes of every step: the paper's on the GPU, tiny ones for the dry run."""

    encoder: str | None
    """Replaces the recipes' encoder in steps 2 and 3 (None: the paper's r50_2x_sk1)."""
    finetune_side: int
    finetune_batch: int
    finetune_warmup: int
    finetune_steps: int
    simclr_sides: tuple[tuple[int, int, int], ...]
    """(view side, first batch tried, largest batch tried) per side of the SimCLR batch search."""
    simclr_search_s: float
    """Time for the batch search at one side; the search stops with what it found so far."""
    simclr_simulated_limit: int | None
    """Dry run: batches above this raise ``torch.cuda.OutOfMemoryError``, so that the bisection runs too."""
    simclr_repeats: int
    simclr_lightning_batch: int
    benchmark_size: str
    """The ``benchmarks`` size whose helpers step 4 reuses (``membank.share_of_step``)."""
    cls_overrides: tuple[str, ...]
    cls_warmup: int
    cls_steps: int
    train_overrides: tuple[str, ...]
    predict_images: int
    ddp_per_rank: int
    ddp_timeout_s: float
    budget_s: float
    """Steps that would start after this many seconds are skipped (and fail): the run must end in time."""


GPU_PLAN = Plan(
    encoder=None,
    finetune_side=512,
    finetune_batch=8,
    finetune_warmup=3,
    finetune_steps=20,
    simclr_sides=((512, 8, 256), (224, 32, 1024)),
    simclr_search_s=50.0,
    simclr_simulated_limit=None,
    simclr_repeats=2,
    simclr_lightning_batch=32,
    benchmark_size="gpu",
    cls_overrides=(),
    cls_warmup=3,
    cls_steps=10,
    train_overrides=("trainer.max_epochs=2",),
    predict_images=16,
    ddp_per_rank=64,
    ddp_timeout_s=90.0,
    budget_s=400.0,
)
DRY_PLAN = Plan(
    encoder="r18_0.25x_sk0",
    finetune_side=32,
    finetune_batch=2,
    finetune_warmup=1,
    finetune_steps=2,
    simclr_sides=((48, 2, 8), (32, 2, 8)),
    simclr_search_s=30.0,
    simclr_simulated_limit=4,
    simclr_repeats=1,
    simclr_lightning_batch=2,
    benchmark_size="tiny",
    cls_overrides=("model.encoder=resnet18", "data.image_size=32", "data.batch_size=2", "data.unlabeled_batch_size=2"),
    cls_warmup=1,
    cls_steps=1,
    train_overrides=(
        "trainer.max_epochs=1",
        "model.encoder=r18_0.25x_sk0",
        "data.image_size=32",
        "data.batch_size=2",
        "data.test_holdout=4",
    ),
    predict_images=2,
    ddp_per_rank=4,
    ddp_timeout_s=60.0,
    budget_s=300.0,
)


@dataclass
class Context:
    """What the steps share: device, sizes, a scratch folder, the data, the deadline and step 5's run."""

    device: torch.device
    dry: bool
    plan: Plan
    work: Path
    data_root: Path | None
    deadline: float
    run: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


# ---------------------------------------------------------------------------------------------------- helpers


def _gib(n: float) -> float:
    return round(n / 2**30, 3)


_step_peak = [0]
"""The largest ``max_memory_allocated`` of the running step, kept across the resets its parts make."""


def _fold_peak(device: torch.device) -> None:
    if device.type == "cuda":
        _step_peak[0] = max(_step_peak[0], torch.cuda.max_memory_allocated())


def _release(device: torch.device) -> None:
    """Free what the previous work left (Python garbage, the allocator's cache) and restart the peak statistics."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        _fold_peak(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: torch.device) -> float | None:
    return _gib(torch.cuda.max_memory_allocated()) if device.type == "cuda" else None


def _measured(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """``fn()`` and the peak memory it allocated (GiB): ``common.peak_bytes`` (CUDA statistics, CPU storages)."""
    holder: list[Any] = []
    _fold_peak(device)  # peak_bytes restarts the statistics
    peak = peak_bytes(lambda: holder.append(fn()), device)
    return holder[0], _gib(peak)


def _failed_checks(checks: dict[str, bool | None], notes: dict[str, str]) -> str | None:
    failed = [name for name, ok in checks.items() if ok is False]
    if not failed:
        return None
    return "failed checks: " + "; ".join(f"{name} ({notes[name]})" if name in notes else name for name in failed)


def _config(recipe: str, device: torch.device, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    from marsvision.training.config import load_config

    base = ["trainer.progress_bar=false", f"trainer.device={device.type}", "trainer.max_epochs=1"]
    return load_config(recipe, [*base, *overrides])


@contextlib.contextmanager
def _tf32(allowed: bool) -> Iterator[None]:
    """TF32 for CUDA matmuls and convolutions on or off (off: float32 results comparable with the CPU's)."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = allowed
    torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def _module_device(module: Any) -> str:
    return str(next(module.parameters()).device.type)


@contextlib.contextmanager
def _device_spy(owner: Any, name: str, seen: list[str], of_result: bool = False) -> Iterator[None]:
    """Record the device of ``owner.name``'s first argument (a module), or of its result's ``device``, per call."""
    original = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        if not of_result:
            seen.append(_module_device(args[0]))
        result = original(*args, **kwargs)
        if of_result:
            seen.append(str(result.device.type))
        return result

    setattr(owner, name, spy)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _cli(args: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Run ``marsvision ARGS`` in this process; return its exit code and the JSON object it printed (``--json``)."""
    from marsvision.cli import app

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = app(args=args, prog_name="marsvision", standalone_mode=False)
    result = None
    for line in reversed(out.getvalue().strip().splitlines()):
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            break
    return int(code or 0), result


def _metric_diff(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """Largest absolute difference over the numeric metrics both hold (NaN = NaN); None when none is shared."""
    diffs = []
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if not isinstance(x, (int, float)) or not isinstance(y, (int, float)) or isinstance(x, bool):
            continue
        if math.isnan(x) and math.isnan(y):
            diffs.append(0.0)
        elif math.isnan(x) or math.isnan(y):
            diffs.append(math.inf)
        else:
            diffs.append(abs(float(x) - float(y)))
    return max(diffs) if diffs else None


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _within(value: float | None, tolerance: float) -> bool:
    return value is not None and value <= tolerance


def _part(errors: dict[str, str], name: str, fn: Callable[[], Any]) -> Any:
    """Run one part of a step: an exception is recorded under ``name`` (the step fails) and the step goes on, so
    that one device run reports every part."""
    try:
        return fn()
    except Exception:
        errors[name] = traceback.format_exc(limit=8)[-3000:]
        return None


# ---------------------------------------------------------------------------------------------------- 1. environment


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _nvidia_smi() -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def environment(device: torch.device, dry: bool) -> dict[str, Any]:
    """Versions and hardware: what the figures of this run were measured with."""
    env: dict[str, Any] = {
        "mode": "dry-run" if dry else "gpu",
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "device": device.type,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            {
                "gpu": torch.cuda.get_device_name(0),
                "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
                "gpu_memory_gib": _gib(props.total_memory),
                "gpu_multiprocessors": props.multi_processor_count,
                "bf16_supported": torch.cuda.is_bf16_supported(),
                "cudnn": torch.backends.cudnn.version(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "nvidia_smi": _nvidia_smi(),
            }
        )
        with contextlib.suppress(Exception):
            version = torch.cuda.nccl.version()
            env["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
    packages = (
        "lightning",
        "torchvision",
        "torchmetrics",
        "timm",
        "segmentation-models-pytorch",
        "lightly",
        "huggingface-hub",
        "safetensors",
        "onnx",
        "onnxruntime",
        "onnxruntime-gpu",
        "numpy",
        "typer",
        "marsvision",
    )
    env["packages"] = {name: _version(name) for name in packages}
    with contextlib.suppress(Exception):
        import onnxruntime

        env["onnxruntime_providers"] = list(onnxruntime.get_available_providers())
    return env


def step_environment(ctx: Context) -> dict[str, Any]:
    imports: dict[str, str] = {}
    for module in ("marsvision", "segmentation_models_pytorch", "lightly", "lightning", "onnxruntime"):
        try:
            imported = importlib.import_module(module)
            imports[module] = str(Path(imported.__file__ or "?").parent)
        except Exception as error:  # a missing wheel on the device machine: say which
            imports[module] = f"ERROR {type(error).__name__}: {error}"
    checks: dict[str, bool | None] = {
        "cuda_available": torch.cuda.is_available() if not ctx.dry else None,
        "bf16_supported": ctx.environment.get("bf16_supported") if not ctx.dry else None,
        "imports": all(not path.startswith("ERROR") for path in imports.values()),
    }
    env = ctx.environment
    summary = (
        f"torch {env['torch']}, CUDA {env['cuda_runtime']}, {env.get('gpu', 'CPU')}, "
        f"bf16 {_num(env.get('bf16_supported'))}"
    )
    return {"summary": summary, "imported_from": imports, "checks": checks}


# ---------------------------------------------------------------------------------------------------- 2. fine-tuning


def meta_estimate_gib(config: Any, classes: int, batch: int, side: int) -> tuple[float, float]:
    """The meta-device estimate of a fp32 training step with Adam (GiB) and its GFLOP, as ``scaling`` counts them."""
    from benchmarks.overhead import build_module
    from benchmarks.scaling import meta_point

    with torch.device("meta"):
        model = build_module("segmentation", config, classes).model.train()
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    point = meta_point(model, batch, side, config.data.channels)
    static = 4 * params * 3 + buffers  # weights + Adam's two moments (gradients are in the step's peak)
    return _gib(static + point["step_peak_bytes"]), point["flops"] / 1e9


def step_finetune(ctx: Context) -> dict[str, Any]:
    from benchmarks.overhead import _config as overhead_config
    from benchmarks.overhead import build_module, synthetic_batch

    plan, classes = ctx.plan, 6
    config = overhead_config("segmentation", "gpu", ctx.device, plan.finetune_side, plan.finetune_batch)
    if plan.encoder:
        config.model.encoder = plan.encoder
    config.trainer.precision = "bf16-mixed"
    config.trainer.channels_last = True
    estimate, gflop = meta_estimate_gib(config, classes, plan.finetune_batch, plan.finetune_side)
    batch = synthetic_batch(plan.finetune_batch, config.data.channels, plan.finetune_side, classes)

    def fit() -> Any:
        module = build_module("segmentation", config, classes)
        return lightning_step_times(
            module, config, {"labeled": batch}, ctx.device, plan.finetune_warmup, plan.finetune_steps, marsvision=False
        )

    timer, peak = _measured(fit, ctx.device)
    median_s = statistics.median(timer.loop)
    ratio = peak / estimate if estimate else None
    checks: dict[str, bool | None] = {
        "all_steps_ran": len(timer.loop) == plan.finetune_steps,
        # the estimate is of the fp32 step: the bf16 step on the GPU must stay below it (CPU storages differ)
        "within_meta_estimate": (ratio is not None and ratio <= 1.0) if ctx.cuda else None,
    }
    notes = {"within_meta_estimate": f"peak {peak} GiB > estimate {estimate} GiB"}
    return {
        "summary": f"{1e3 * median_s:.1f} ms/step, {_num(peak)} GiB peak vs {_num(estimate)} GiB estimated",
        "recipe": config.name,
        "encoder": config.model.encoder,
        "side": plan.finetune_side,
        "batch": plan.finetune_batch,
        "precision": config.trainer.precision,
        "channels_last": config.trainer.channels_last,
        "optimizer": config.optim.name,
        "step_ms": stats(timer.loop),
        "inside_step_ms": stats(timer.inner),
        "images_per_s": plan.finetune_batch / median_s,
        "gflop_per_step": gflop,
        "achieved_tflops": gflop / median_s / 1e3,
        "peak_gib": peak,
        "meta_estimate_gib": estimate,
        "vm_md_estimate_gib": PAPER_STEP_ESTIMATE_GIB if plan.encoder is None else None,
        "measured_over_estimate": ratio,
        "checks": checks,
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------------- 3. SimCLR


class SimCLRStep:
    """One plain SimCLR training step (two views, projection, contrastive loss, optimiser) of one library."""

    def __init__(self, library: str, config: Any, device: torch.device) -> None:
        self.library, self.config, self.device = library, config, device
        torch.manual_seed(0)  # the same initial encoder for both libraries
        if library == "lightly":
            from benchmarks.simclr_vs_lightly import lightly_module

            self.module = lightly_module(config).to(device)
            self.optimizer = self.module.configure_optimizers()
        else:
            from marsvision.training.optim import build_optimizer
            from marsvision.training.pretrain import SimCLRModule

            self.module = SimCLRModule(config).to(device)
            self.optimizer = build_optimizer(
                config.optim, list(self.module.encoder.parameters()), list(self.module.projection_head.parameters())
            )

    def __call__(self, views: list[torch.Tensor]) -> torch.Tensor:
        from marsvision.losses.nt_xent import nt_xent_loss

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.config.trainer.precision):
            if self.library == "lightly":
                loss: torch.Tensor = self.module.training_step({"views": views}, 0)
            else:
                z1 = self.module.projection_head(self.module.encoder(views[0]))
                z2 = self.module.projection_head(self.module.encoder(views[1]))
                loss = nt_xent_loss(z1, z2, temperature=self.config.simclr.temperature)
        loss.backward()
        self.optimizer.step()
        return loss

    def reset(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)


def _views(batch: int, channels: int, side: int, device: torch.device) -> list[torch.Tensor]:
    return [torch.rand(batch, channels, side, side, device=device) for _ in range(2)]


def try_batch(step: SimCLRStep, batch: int, side: int, simulated_limit: int | None) -> tuple[str, float | None]:
    """Run one step at ``batch``: ``("ok", peak GiB)``, or the reason it does not run (out of memory, an error)."""
    device = step.device
    _release(device)
    outcome = "ok"
    views: list[torch.Tensor] | None = None
    try:
        if simulated_limit is not None and batch > simulated_limit:
            raise torch.cuda.OutOfMemoryError(f"simulated: batch {batch} > {simulated_limit}")
        views = _views(batch, step.config.data.channels, side, device)
        step(views)
        sync(device)
    except torch.cuda.OutOfMemoryError:
        outcome = "out of memory"
    except RuntimeError as error:  # cuDNN refusing a huge batch, 32-bit indexing: that batch does not run either
        outcome = f"error: {str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__}"
    finally:
        views = None
    peak = _peak_gib(device) if outcome == "ok" else None
    step.reset()
    _release(device)
    return outcome, peak


def largest_batch(
    fits: Callable[[int], tuple[str, float | None]], start: int, cap: int, stop_at: float
) -> dict[str, Any]:
    """The largest batch for which ``fits`` says "ok": doubling from ``start`` up to ``cap``, then bisection.

    The bisection stops within 1/8 of the answer (or 1); a batch below 2 is never tried (BatchNorm needs two);
    after ``stop_at`` (``time.monotonic``) no new batch is tried and the best so far is the answer.
    """
    trials: list[dict[str, Any]] = []
    failure: str | None = None

    def attempt(batch: int) -> bool:
        nonlocal failure
        started = time.perf_counter()
        outcome, peak = fits(batch)
        trials.append(
            {"batch": batch, "outcome": outcome, "seconds": round(time.perf_counter() - started, 2), "peak_gib": peak}
        )
        if outcome != "ok":
            failure = outcome
        return outcome == "ok"

    low, high, batch = 0, None, max(start, 2)
    while batch <= cap and time.monotonic() < stop_at:
        if not attempt(batch):
            high = batch
            break
        low, batch = batch, batch * 2
    while high is not None and high - low > max(1, low // 8) and time.monotonic() < stop_at:
        middle = (low + high) // 2
        if middle < 2:
            break
        if attempt(middle):
            low = middle
        else:
            high = middle
    if high is None:
        stopped = "cap" if batch > cap else "time"
    else:
        stopped = "time" if high - low > max(1, low // 8) and low >= 2 else "bisected"
    return {
        "max_batch": low,
        "first_failing_batch": high,
        "failure": failure,
        "stopped_by": stopped,
        "cap": cap,
        "trials": trials,
    }


def simclr_throughput(step: SimCLRStep, batch: int, side: int, repeats: int) -> dict[str, Any]:
    """Images/s (one image = two views) of ``step`` at ``batch``, and its peak memory; out of memory is recorded."""
    device = step.device
    _release(device)
    result: dict[str, Any] = {"batch": batch}
    views: list[torch.Tensor] | None = None
    try:
        views = _views(batch, step.config.data.channels, side, device)
        chunk = views
        seconds = statistics.median(time_calls(lambda: step(chunk), device, repeats=repeats, warmup=1))
        result.update({"step_ms": 1e3 * seconds, "images_per_s": batch / seconds, "peak_gib": _peak_gib(device)})
    except torch.cuda.OutOfMemoryError:
        result["error"] = "out of memory"
    finally:
        views = None
    step.reset()
    _release(device)
    return result


def simclr_config(ctx: Context, side: int) -> Any:
    """``simclr-ai4mars`` (LARS, bf16-mixed) with views of ``side`` px (and the dry run's small encoder)."""
    encoder = [f"model.encoder={ctx.plan.encoder}"] if ctx.plan.encoder else []
    return _config("simclr-ai4mars", ctx.device, [f"data.image_size={side}", *encoder])


def simclr_lightning(ctx: Context, batch: int, side: int) -> dict[str, Any]:
    """A few steps of ``SimCLRModule`` itself under Lightning (its LARS, schedule and precision): it trains."""
    from marsvision.training.pretrain import SimCLRModule

    config = simclr_config(ctx, side)
    torch.manual_seed(0)
    views = [torch.rand(batch, config.data.channels, side, side) for _ in range(2)]
    streams = {"simclr-views": {"views": views}}
    timer = lightning_step_times(SimCLRModule(config), config, streams, ctx.device, 1, 3, marsvision=False)
    return {
        "batch": batch,
        "side": side,
        "step_ms": stats(timer.loop),
        "images_per_s": batch / statistics.median(timer.loop),
    }


def compare_with_lightly(ours: SimCLRStep, best: int, side: int, repeats: int) -> dict[str, Any]:
    """Images/s of our step and of lightly's at the same batch: the largest, or less if both models do not fit."""
    theirs = SimCLRStep("lightly", ours.config, ours.device)
    for batch in dict.fromkeys((best, max(2, best * 3 // 4), max(2, best // 2))):
        mine = simclr_throughput(ours, batch, side, repeats)
        other = simclr_throughput(theirs, batch, side, repeats) if "error" not in mine else {}
        if "images_per_s" in mine and "images_per_s" in other:
            break
    ratio = mine["images_per_s"] / other["images_per_s"] if "images_per_s" in mine and "images_per_s" in other else None
    return {"marsvision": mine, "lightly": other, "ratio_marsvision_vs_lightly": ratio}


def simclr_side(ctx: Context, side: int, start: int, cap: int, errors: dict[str, str]) -> dict[str, Any]:
    """The largest batch at one view side, and the comparison with lightly there."""
    plan = ctx.plan
    config = simclr_config(ctx, side)
    ours = SimCLRStep("marsvision", config, ctx.device)
    stop_at = min(time.monotonic() + plan.simclr_search_s, ctx.deadline - SEARCH_RESERVE_S)
    fits = functools.partial(try_batch, ours, side=side, simulated_limit=plan.simclr_simulated_limit)
    entry: dict[str, Any] = {"encoder": config.model.encoder, "precision": config.trainer.precision}
    entry.update(largest_batch(fits, start, cap, stop_at))
    if entry["max_batch"] >= 2:
        compare = functools.partial(compare_with_lightly, ours, entry["max_batch"], side, plan.simclr_repeats)
        entry.update(_part(errors, f"lightly_at_{side}", compare) or {})
    return entry


def step_simclr(ctx: Context) -> dict[str, Any]:
    sides: dict[str, Any] = {}
    checks: dict[str, bool | None] = {}
    notes: dict[str, str] = {}
    errors: dict[str, str] = {}
    for side, start, cap in ctx.plan.simclr_sides:
        entry = _part(errors, f"search_at_{side}", functools.partial(simclr_side, ctx, side, start, cap, errors))
        _release(ctx.device)
        sides[str(side)] = entry = entry or {"max_batch": 0, "failure": "raised"}
        checks[f"runs_at_{side}"] = entry["max_batch"] >= 2
        notes[f"runs_at_{side}"] = f"no batch of at least 2 ran: {entry.get('failure')}"
        checks[f"lightly_compared_at_{side}"] = entry.get("ratio_marsvision_vs_lightly") is not None
    first = next((int(side) for side, entry in sides.items() if entry["max_batch"] >= 2), None)
    lightning_run = None
    if first is not None:  # at a batch that surely fits
        batch = min(sides[str(first)]["max_batch"], ctx.plan.simclr_lightning_batch)
        lightning_run = _part(errors, "simclr_module", functools.partial(simclr_lightning, ctx, batch, first))
    checks["simclr_module_under_lightning"] = lightning_run is not None
    parts = [
        f"{side}²: batch {entry['max_batch']}, "
        f"{_num(entry.get('marsvision', {}).get('images_per_s'))} img/s, "
        f"×{_num(entry.get('ratio_marsvision_vs_lightly'))} vs lightly"
        for side, entry in sides.items()
    ]
    return {
        "summary": "; ".join(parts),
        "sides": sides,
        "lightning_simclr_module": lightning_run,
        "checks": checks,
        "notes": notes,
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------------------- 4. Method B


def classification_batch(config: Any, classes: int) -> dict[str, Any]:
    """The three streams of one Method B classification step, as the loaders give them (random images)."""
    generator = torch.Generator().manual_seed(0)
    data = config.data
    shape = (data.channels, data.image_size, data.image_size)
    per_class = config.classification.contrastive_batch_images_per_class
    return {
        "labeled": {
            "image": torch.rand(data.batch_size, *shape, generator=generator),
            "label": torch.randint(0, classes, (data.batch_size,), generator=generator),
        },
        "balanced": {  # `per_class` different images of every class, interleaved as the sampler gives them
            "image": torch.rand(classes * per_class, *shape, generator=generator),
            "label": torch.arange(classes).repeat_interleave(per_class),
        },
        "unlabeled-views": {
            "views": [torch.rand(data.unlabeled_batch_size, *shape, generator=generator) for _ in range(2)]
        },
    }


def semiseg_step(ctx: Context) -> dict[str, Any]:
    """The semi-supervised segmentation step and its memory-bank loss share (``membank.share_of_step``)."""
    from benchmarks.membank import share_of_step

    semiseg, peak = _measured(lambda: share_of_step(ctx.plan.benchmark_size, ctx.device), ctx.device)
    return {**semiseg, "peak_gib": peak}


def classification_step(ctx: Context) -> dict[str, Any]:
    """Method B classification steps (three streams) under Lightning."""
    from marsvision.training.classification import WangClassification
    from marsvision.training.data import ClassInfo

    plan, classes = ctx.plan, 24  # MSL v1
    config = _config("wang-cls-msl", ctx.device, plan.cls_overrides)
    names = [f"class{i}" for i in range(classes)]
    batch = classification_batch(config, classes)

    def fit() -> Any:
        torch.manual_seed(0)
        module = WangClassification(config, ClassInfo(names, samples_per_class=[10] * classes))
        return lightning_step_times(module, config, batch, ctx.device, plan.cls_warmup, plan.cls_steps, False)

    timer, peak = _measured(fit, ctx.device)
    return {
        "recipe": config.name,
        "encoder": config.model.encoder,
        "side": config.data.image_size,
        "batch": config.data.batch_size,
        "balanced_images": classes * config.classification.contrastive_batch_images_per_class,
        "unlabeled_pairs": config.data.unlabeled_batch_size,
        "precision": config.trainer.precision,
        "steps": len(timer.loop),
        "step_ms": stats(timer.loop),
        "labeled_images_per_s": config.data.batch_size / statistics.median(timer.loop),
        "peak_gib": peak,
    }


def step_method_b(ctx: Context) -> dict[str, Any]:
    errors: dict[str, str] = {}
    semiseg = _part(errors, "semiseg", lambda: semiseg_step(ctx)) or {}
    _release(ctx.device)
    classification = _part(errors, "classification", lambda: classification_step(ctx)) or {}
    share = semiseg.get("share")
    checks: dict[str, bool | None] = {
        "semiseg_share_measured": isinstance(share, float) and math.isfinite(share),
        "classification_steps_ran": classification.get("steps") == ctx.plan.cls_steps,
    }
    summary = (
        f"B-seg {_num(semiseg.get('step_ms'))} ms/step, bank share {_num(share)}, {_num(semiseg.get('peak_gib'))} GiB; "
        f"B-cls {_num(classification.get('step_ms', {}).get('median_ms'))} ms/step, "
        f"{_num(classification.get('peak_gib'))} GiB"
    )
    return {
        "summary": summary,
        "semiseg": semiseg,
        "classification": classification,
        "checks": checks,
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------------------- 5. CLI


def _step5_data(ctx: Context) -> Path:
    """The 256-px AI4Mars folder (GPU run), or a small generated paired folder (dry run)."""
    if ctx.dry:
        root = ctx.work / "paired"
        if not root.is_dir():
            code, _ = _cli(
                ["data", "synth", str(root), "--kind", "paired-folder", "--num-images", "16", "--size", "32"]
            )
            if code:
                raise RuntimeError(f"marsvision data synth exited with {code}")
        return root
    if ctx.data_root is None or not (ctx.data_root / "images").is_dir():
        raise FileNotFoundError(
            f"{ctx.data_root}: no 256-px AI4Mars folder (images/, labels/); run `make gpu-check-prepare` here, "
            "carry .gpu-data, or pass --data"
        )
    return ctx.data_root


def training_run(ctx: Context) -> dict[str, Any]:
    """``marsvision train`` through the CLI (once per run: steps 5 and 7 share it), spying the final test pass."""
    if ctx.run is not None:
        return ctx.run
    import marsvision.training.api as api

    root = _step5_data(ctx)
    args = [
        "train",
        "-r",
        "finetune-ai4mars256-cpu",
        f"data.root={root}",
        f"data.cache_dir={ctx.work / 'cache'}",
        f"runs_root={ctx.work / 'runs'}",
        "trainer.progress_bar=false",
        "trainer.channels_last=true",
        *ctx.plan.train_overrides,
        "--device",
        ctx.device.type,
        "--precision",
        "bf16-mixed",
        "--json",
    ]
    seen: list[str] = []
    started = time.perf_counter()
    error = None
    try:
        with _device_spy(api, "evaluate_model", seen):
            code, result = _cli(args)
    except Exception:  # kept, so that step 7 does not train again
        code, result, error = -1, None, traceback.format_exc(limit=8)[-3000:]
    ctx.run = {
        "command": "marsvision " + " ".join(args),
        "data_root": str(root),
        "exit_code": code,
        "error": error,
        "result": result or {},
        "final_test_pass_devices": seen,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return ctx.run


def _checkpoint(ctx: Context) -> Path:
    run = training_run(ctx)
    if run["exit_code"] or "checkpoint" not in run["result"]:
        raise RuntimeError(f"the training run failed (exit code {run['exit_code']}): {run['command']}\n{run['error']}")
    return Path(run["result"]["checkpoint"])


def evaluate_on(checkpoint: Path, device: torch.device, tf32: bool = False) -> dict[str, Any]:
    """The run's test metrics with the module on ``device`` (what ``evaluate`` computes, placed explicitly)."""
    from marsvision.training.api import load_module
    from marsvision.training.data import build_eval_dataset
    from marsvision.training.evaluate import evaluate_model

    module, config = load_module(checkpoint)
    module.to(device)
    dataset, class_names, split = build_eval_dataset(config, None)
    started = time.perf_counter()
    with _tf32(tf32):
        evaluation = evaluate_model(module, dataset, config, class_names, run_dir=None, split=split, primary=False)
    sync(device)
    metrics = {k: v for k, v in evaluation["metrics"].items() if isinstance(v, (int, float))}
    return {"device": device.type, "tf32": tf32, "seconds": round(time.perf_counter() - started, 2), "metrics": metrics}


FINAL_EVAL_FIX = (
    "api.train must test the module on trainer.strategy.root_device (Lightning's teardown moves it to the CPU)"
)
EVALUATE_FIX = "evaluate_checkpoint must move the module to --device (auto: CUDA when present) before evaluate_model"


def predict_on(ctx: Context, checkpoint: Path, images: list[Path]) -> dict[str, Any]:
    """``marsvision predict --checkpoint`` on a few images, recording the device it predicted on."""
    import marsvision.inference.network as network

    devices: list[str] = []
    out = ctx.work / "predict"
    with _device_spy(network, "load_checkpoint", devices, of_result=True):
        code, result = _cli(
            ["predict", *map(str, images), "--out", str(out), "--checkpoint", str(checkpoint), "--json"]
        )
    result = result or {}
    return {"exit_code": code, "devices": devices, "images": len(images), "written": result.get("written"), **result}


def evaluate_cli(run_dir: str) -> dict[str, Any]:
    """``marsvision evaluate RUN --json``, recording the device of the module it evaluated."""
    import marsvision.training.api as api

    devices: list[str] = []
    with _device_spy(api, "evaluate_model", devices):
        code, result = _cli(["evaluate", run_dir, "--json"])
    return {"exit_code": code, "devices": devices, "metrics": (result or {}).get("metrics")}


def step_cli(ctx: Context) -> dict[str, Any]:
    expected = ctx.device.type
    run = training_run(ctx)
    result = run["result"]
    checks: dict[str, bool | None] = {"train_ok": run["exit_code"] == 0 and "metrics" in result}
    notes: dict[str, str] = {"train_ok": f"exit code {run['exit_code']}; {_last_line(run['error'] or '')}"}
    errors: dict[str, str] = {"train": run["error"]} if run["error"] else {}
    if not checks["train_ok"]:
        return {"train": run, "checks": checks, "notes": notes, "errors": errors}
    checkpoint = Path(result["checkpoint"])
    checks["final_test_pass_on_device"] = run["final_test_pass_devices"] == [expected]
    notes["final_test_pass_on_device"] = f"ran on {run['final_test_pass_devices']}, expected [{expected}]: "
    notes["final_test_pass_on_device"] += FINAL_EVAL_FIX

    evaluated = _part(errors, "evaluate_cli", lambda: evaluate_cli(result["run_dir"])) or {}
    checks["evaluate_ok"] = evaluated.get("exit_code") == 0 and bool(evaluated.get("metrics"))
    checks["evaluate_on_device"] = evaluated.get("devices") == [expected]
    notes["evaluate_on_device"] = f"ran on {evaluated.get('devices')}, expected [{expected}]: {EVALUATE_FIX}"

    on_device = _part(errors, "evaluate_on_device", lambda: evaluate_on(checkpoint, ctx.device)) or {}
    on_cpu = _part(errors, "evaluate_on_cpu", lambda: evaluate_on(checkpoint, torch.device("cpu"))) or {}
    with_tf32 = _part(errors, "evaluate_tf32", lambda: evaluate_on(checkpoint, ctx.device, True)) if ctx.cuda else None
    cpu_metrics = on_cpu.get("metrics", {})
    diffs = {
        "device_vs_cpu": _metric_diff(on_device.get("metrics", {}), cpu_metrics),
        "train_vs_cpu": _metric_diff(result["metrics"], cpu_metrics),
        "evaluate_cli_vs_cpu": _metric_diff(evaluated.get("metrics") or {}, cpu_metrics),
        "device_tf32_vs_cpu": _metric_diff(with_tf32["metrics"], cpu_metrics) if with_tf32 else None,
    }
    checks["device_eval_equals_cpu_eval"] = _within(diffs["device_vs_cpu"], TOLERANCE)
    checks["train_metrics_equal_cpu_eval"] = _within(diffs["train_vs_cpu"], TOLERANCE)
    checks["evaluate_metrics_equal_cpu_eval"] = _within(diffs["evaluate_cli_vs_cpu"], TOLERANCE)
    for name in ("device_eval_equals_cpu_eval", "train_metrics_equal_cpu_eval", "evaluate_metrics_equal_cpu_eval"):
        notes[name] = f"max |difference| of the metrics {diffs}"

    images = sorted((Path(run["data_root"]) / "images").iterdir())[: ctx.plan.predict_images]
    predicted = _part(errors, "predict", lambda: predict_on(ctx, checkpoint, images)) or {}
    checks["predict_ok"] = predicted.get("exit_code") == 0 and predicted.get("written") == len(images)
    checks["predict_on_device"] = predicted.get("devices") == [expected]
    notes["predict_on_device"] = f"ran on {predicted.get('devices')}, expected [{expected}]"
    summary = (
        f"train {run['seconds']} s, test pass on {run['final_test_pass_devices']}, evaluate on "
        f"{evaluated.get('devices')}, predict on {predicted.get('devices')}; |device - cpu| = "
        f"{_num(diffs['device_vs_cpu'])}"
    )
    return {
        "summary": summary,
        "train": {k: v for k, v in run.items() if k not in ("result", "error")},
        "train_metrics": result.get("metrics"),
        "evaluate_cli": evaluated,
        "evaluate_on_device": on_device,
        "evaluate_on_cpu": on_cpu,
        "evaluate_on_device_tf32": with_tf32,
        "max_metric_diff": diffs,
        "predict": {k: predicted.get(k) for k in ("exit_code", "devices", "images", "written", "failed", "backend")},
        "checks": checks,
        "notes": notes,
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------------------- 6. DDP


BANK_CLASSES, BANK_DIM, BANK_SIDE, BANK_IMAGES_PER_RANK, BANK_QUEUE = 4, 8, 8, 2, 6
BANK_PUSHES = (1, 2, 3)
"""The memory-bank check: the first push fills the bank (loss 0), the queues wrap at the third (seeds)."""


def _bank_batch(seed: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings and labels of the global batch of one bank push (every image holds every class)."""
    generator = torch.Generator().manual_seed(seed)
    count, classes, side = world * BANK_IMAGES_PER_RANK, BANK_CLASSES, BANK_SIDE
    features = torch.randn(count, BANK_DIM, side, side, generator=generator)
    labels = torch.randint(0, classes, (count, side, side), generator=generator)
    labels[:, 0, :classes] = torch.arange(classes)  # equal loss weight on every rank: the mean over ranks is exact
    return features, labels


def bank_reference(world: int, device: torch.device) -> dict[str, Any]:
    """One process pushing the global batches: losses and final bank. Run before joining the process group,
    since under one every push is a collective."""
    from marsvision.losses.elementwise_contrastive import ElementwiseContrastiveLoss

    loss = ElementwiseContrastiveLoss(BANK_CLASSES, BANK_DIM, queue_len=BANK_QUEUE).to(device)
    losses = []
    for seed in BANK_PUSHES:
        features, labels = _bank_batch(seed, world)
        losses.append(float(loss(features.to(device), labels.to(device))))
    return {"losses": losses, "queue": loss.bank.queue.clone(), "ptr": loss.bank.ptr.clone(), "size": loss.bank.size}


def ddp_checks(rank: int, world: int, device: torch.device, per_rank: int, reference: dict[str, Any]) -> dict:
    """In one rank of a process group: SimCLR's gathered loss and DDP gradients, and the gathered memory bank,
    against one process computing the same on the concatenated batch."""
    import copy

    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from marsvision.losses.elementwise_contrastive import ElementwiseContrastiveLoss
    from marsvision.losses.nt_xent import nt_xent_loss

    out: dict[str, Any] = {"rank": rank, "device": device.type}
    # SimCLR: rank r holds images [r·n, (r+1)·n) of one global batch; negatives come from every rank
    n, width, dim, temperature = per_rank, 32, 16, 0.1
    generator = torch.Generator().manual_seed(0)
    x1 = torch.randn(world * n, width, generator=generator)
    x2 = x1 + 0.3 * torch.randn(world * n, width, generator=generator)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, dim)).to(device)
    single = copy.deepcopy(net)
    ddp = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    mine = slice(rank * n, (rank + 1) * n)
    z = ddp(torch.cat([x1[mine], x2[mine]]).to(device))  # one forward for both views
    loss = nt_xent_loss(z[:n], z[n:], temperature=temperature, gather_distributed=True)
    loss.backward()  # DDP averages the gradients over ranks
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    mean_loss /= world
    z_all = single(torch.cat([x1, x2]).to(device))
    expected = nt_xent_loss(z_all[: world * n], z_all[world * n :], temperature=temperature)  # no process group use
    expected.backward()
    expected = expected.detach()
    local_only = nt_xent_loss(z[:n].detach(), z[n:].detach(), temperature=temperature)
    grads = [
        float((a.grad - b.grad).abs().max())  # type: ignore[operator]
        for a, b in zip(net.parameters(), single.parameters(), strict=True)
    ]
    out["simclr"] = {
        "global_batch": world * n,
        "loss_mean_over_ranks": float(mean_loss),
        "loss_one_process": float(expected),
        "loss_without_gather": float(local_only),
        "loss_diff": abs(float(mean_loss) - float(expected)),
        "grad_max_diff": max(grads),
    }
    # Memory bank: each rank pushes its own images' class means; every rank must end with the whole batch's bank
    bank_loss = ElementwiseContrastiveLoss(BANK_CLASSES, BANK_DIM, queue_len=BANK_QUEUE).to(device)
    part = slice(rank * BANK_IMAGES_PER_RANK, (rank + 1) * BANK_IMAGES_PER_RANK)
    diffs = []
    for seed, total in zip(BANK_PUSHES, reference["losses"], strict=True):
        features, labels = _bank_batch(seed, world)
        local = bank_loss(features[part].to(device), labels[part].to(device)).detach()
        dist.all_reduce(local)
        diffs.append(abs(float(local) / world - total))
    bank = bank_loss.bank
    out["memory_bank"] = {
        "loss_diffs": diffs,
        "queue_max_diff": float((bank.queue - reference["queue"].to(device)).abs().max()),
        "pointers_equal": bool(
            torch.equal(bank.ptr.cpu(), reference["ptr"].cpu())
            and torch.equal(bank.size.cpu(), reference["size"].cpu())
        ),
        "entries_per_class": bank.size.tolist(),
    }
    if device.type == "cuda":
        out["peak_gib"] = _gib(torch.cuda.max_memory_allocated())
    return out


def ddp_worker(
    rank: int, world: int, init_file: str, backend: str, device_type: str, per_rank: int, results: Any
) -> None:
    """One spawned rank: join the group, run ``ddp_checks``, put the outcome (or the error) on the queue."""
    import torch.distributed as dist

    out: dict[str, Any] = {"rank": rank}
    try:
        if device_type == "cuda":
            torch.cuda.set_device(0)  # both ranks on the one GPU
        else:
            torch.set_num_threads(1)
        device = torch.device("cuda", 0) if device_type == "cuda" else torch.device("cpu")
        reference = bank_reference(world, device)
        dist.init_process_group(
            backend, init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=dt.timedelta(seconds=45)
        )
        try:
            out = ddp_checks(rank, world, device, per_rank, reference)
            if backend == "nccl":  # nobody leaves while the other still talks to it
                dist.barrier(device_ids=[0])
            else:
                dist.barrier()
        finally:
            dist.destroy_process_group()
    except Exception:
        out["error"] = traceback.format_exc(limit=6)[-2500:]
    results.put(out)


def ddp_attempt(backend: str, device_type: str, per_rank: int, timeout_s: float) -> dict[str, Any]:
    """Two spawned ranks with ``backend`` on ``device_type``; their outcomes, or what went wrong."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    started = time.perf_counter()
    ranks: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-ddp-") as tmp:
        init_file = str(Path(tmp) / "init")
        processes = [
            context.Process(
                target=ddp_worker, args=(rank, 2, init_file, backend, device_type, per_rank, results), daemon=True
            )
            for rank in range(2)
        ]
        for process in processes:
            process.start()
        deadline = time.monotonic() + timeout_s
        while len(ranks) < 2 and time.monotonic() < deadline:
            try:
                ranks.append(results.get(timeout=1.0))
            except queue_module.Empty:
                if not any(p.is_alive() for p in processes) and results.empty():
                    break  # a rank died without a word
        for process in processes:
            process.join(timeout=max(1.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(5)
    outcome: dict[str, Any] = {
        "backend": backend,
        "device": device_type,
        "seconds": round(time.perf_counter() - started, 2),
        "exit_codes": [p.exitcode for p in processes],
        "ranks": sorted(ranks, key=lambda r: r.get("rank", 0)),
    }
    errors = [r["error"] for r in ranks if "error" in r]
    if len(ranks) < 2 or errors:
        outcome["error"] = errors[0] if errors else f"{2 - len(ranks)} rank(s) gave no result in {timeout_s:.0f} s"
    return outcome


def step_ddp(ctx: Context) -> dict[str, Any]:
    import torch.distributed as dist

    candidates = [("nccl", "cuda"), ("gloo", "cuda"), ("gloo", "cpu")] if ctx.cuda else [("gloo", "cpu")]
    attempts: list[dict[str, Any]] = []
    for backend, device_type in candidates:
        if not dist.is_available() or (backend == "nccl" and not dist.is_nccl_available()):
            attempts.append({"backend": backend, "device": device_type, "error": "backend not available"})
            continue
        attempts.append(ddp_attempt(backend, device_type, ctx.plan.ddp_per_rank, ctx.plan.ddp_timeout_s))
        if "error" not in attempts[-1]:
            break
    last = attempts[-1]
    ranks = last.get("ranks", []) if "error" not in last else []
    checks: dict[str, bool | None] = {"two_ranks_ran": bool(ranks)}
    notes = {
        "two_ranks_ran": "; ".join(
            f"{a['backend']}/{a['device']}: {_last_line(a.get('error', 'ok'))}" for a in attempts
        )
    }
    if ranks:
        simclr = [r["simclr"] for r in ranks]
        bank = [r["memory_bank"] for r in ranks]
        checks["on_this_device"] = last["device"] == ctx.device.type
        notes["on_this_device"] = f"only {last['backend']} on the {last['device']} ran"
        checks["simclr_loss_equals_one_process"] = max(s["loss_diff"] for s in simclr) <= GATHER_TOLERANCE
        checks["simclr_grads_equal_one_process"] = max(s["grad_max_diff"] for s in simclr) <= GATHER_TOLERANCE
        checks["bank_equals_one_process"] = all(
            b["pointers_equal"] and b["queue_max_diff"] <= GATHER_TOLERANCE for b in bank
        )
        checks["bank_loss_equals_one_process"] = max(max(b["loss_diffs"]) for b in bank) <= GATHER_TOLERANCE
    peaks = [r["peak_gib"] for r in ranks if "peak_gib" in r]
    summary = f"{last['backend']} on {last['device']}" if ranks else "no backend ran two ranks"
    return {
        "summary": summary,
        "backend": last["backend"] if ranks else None,
        "device": last["device"] if ranks else None,
        "rank_peak_gib": max(peaks) if peaks else None,
        "attempts": attempts,
        "checks": checks,
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------------- 7. ONNX


def ort_session(path: Path, cuda: bool) -> Any:
    """An onnxruntime session on the CUDA provider (TF32 off where the option exists) if wanted, else the CPU."""
    import onnxruntime as ort

    if not cuda:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    try:
        providers: list[Any] = [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
        return ort.InferenceSession(str(path), providers=providers)
    except Exception:  # an older onnxruntime without the option
        return ort.InferenceSession(str(path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])


def onnxruntime_parity(ctx: Context, checkpoint: Path, path: Path) -> dict[str, Any]:
    """The exported model in onnxruntime (CUDA provider when installed) against PyTorch on the device."""
    import numpy as np
    import onnxruntime as ort

    from marsvision.inference.network import load_checkpoint

    loaded = load_checkpoint(checkpoint, device=ctx.device.type)
    spec = loaded.spec
    sample = torch.rand(4, spec.channels, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(0))
    with _tf32(False), torch.no_grad():
        expected = loaded.network(sample.to(ctx.device)).float().cpu().numpy()
        torch_s = statistics.median(time_calls(lambda: loaded.network(sample.to(ctx.device)), ctx.device, 5))
    session = ort_session(path, "CUDAExecutionProvider" in ort.get_available_providers())
    inputs = {session.get_inputs()[0].name: sample.numpy()}
    actual = np.asarray(session.run(None, inputs)[0], dtype=np.float32)
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        session.run(None, inputs)
        runs.append(time.perf_counter() - started)
    return {
        "torch_device": ctx.device.type,
        "onnxruntime_providers_available": list(ort.get_available_providers()),
        "onnxruntime_providers_used": list(session.get_providers()),
        "batch": len(sample),
        "max_abs_diff": float(np.abs(actual - expected).max()),
        "tolerance": TOLERANCE,
        "torch_batch_ms": 1e3 * torch_s,
        "onnxruntime_batch_ms": 1e3 * statistics.median(runs),
    }


def step_onnx(ctx: Context) -> dict[str, Any]:
    checkpoint = _checkpoint(ctx)
    path = ctx.work / "model.onnx"
    code, exported = _cli(["export", "--checkpoint", str(checkpoint), "--onnx", str(path), "--dynamic-batch", "--json"])
    exported = exported or {}
    checks: dict[str, bool | None] = {"export_ok": code == 0 and bool(exported.get("passed"))}
    notes = {"export_ok": f"exit code {code}, onnxruntime vs PyTorch on the CPU: {exported.get('max_abs_diff')}"}
    errors: dict[str, str] = {}
    parity = _part(errors, "onnxruntime", lambda: onnxruntime_parity(ctx, checkpoint, path)) if path.is_file() else None
    parity = parity or {}
    difference = parity.get("max_abs_diff")
    checks["onnxruntime_equals_torch_on_device"] = _within(difference, TOLERANCE)
    notes["onnxruntime_equals_torch_on_device"] = f"max |difference| {difference}, tolerance {TOLERANCE}"
    provider = (parity.get("onnxruntime_providers_used") or ["no onnxruntime session"])[0]
    return {
        "summary": f"export {'passed' if checks['export_ok'] else 'FAILED'} (CPU |diff| "
        f"{_num(exported.get('max_abs_diff'))}); {provider} vs torch on {ctx.device.type}: |diff| {_num(difference)}",
        "export": exported,
        "onnx_mib": round(path.stat().st_size / 2**20, 2) if path.is_file() else None,
        **parity,
        "checks": checks,
        "notes": notes,
        "errors": errors,
    }


# ---------------------------------------------------------------------------------------------------- the run

STEP_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "environment": step_environment,
    "finetune_step": step_finetune,
    "simclr_batch": step_simclr,
    "method_b_steps": step_method_b,
    "cli_end_to_end": step_cli,
    "ddp_gather": step_ddp,
    "onnx_export": step_onnx,
}


def run_step(name: str, ctx: Context) -> dict[str, Any]:
    """One step: timed, its peak GPU memory read, its failure (an exception or a failed check) recorded."""
    _release(ctx.device)
    _step_peak[0] = 0
    entry: dict[str, Any] = {"name": name, "passed": False, "seconds": 0.0, "peak_memory_gib": None, "figures": {}}
    if time.monotonic() > ctx.deadline:
        entry["error"] = f"skipped: the time budget of {ctx.plan.budget_s:.0f} s was spent"
        return entry
    started = time.perf_counter()
    error: str | None = None
    try:
        torch.manual_seed(0)
        figures = STEP_FUNCTIONS[name](ctx)
    except Exception:
        figures = {}
        error = traceback.format_exc(limit=8)[-4000:]
    entry["seconds"] = round(time.perf_counter() - started, 2)
    with contextlib.suppress(Exception):  # a broken CUDA context must not hide the step's own error
        _fold_peak(ctx.device)
        entry["peak_memory_gib"] = _gib(_step_peak[0]) if ctx.cuda else None
    checks = figures.get("checks", {})
    raised = {name: text for name, text in figures.get("errors", {}).items() if text}
    error = error or _failed_checks(checks, figures.get("notes", {}))
    if raised:  # the parts that raised, with their tracebacks (figures keep only their last lines)
        error = "\n\n".join(
            [*([error] if error else []), *(f"{name} raised:\n{text}" for name, text in raised.items())]
        )
        figures["errors"] = {name: _last_line(text) for name, text in raised.items()}
    else:
        figures.pop("errors", None)
    notes = {name: note for name, note in figures.pop("notes", {}).items() if checks.get(name) is False}
    if notes:  # the explanations of failed checks only
        figures["notes"] = notes
    entry["figures"] = figures
    entry["passed"] = error is None
    if error is not None:
        entry["error"] = error
    return entry


def markdown(document: dict[str, Any]) -> str:
    """The results as a table of steps, then each step's failure and figures."""
    env = document["environment"]
    steps = document["steps"]
    passed = sum(step["passed"] for step in steps)
    lines = [
        f"# marsvision GPU check ({env.get('mode')})",
        "",
        f"{env.get('date_utc')}, commit {env.get('git_commit')}; {env.get('gpu') or 'no GPU'} "
        f"({env.get('nvidia_smi') or env.get('cpu')}); torch {env.get('torch')}, CUDA {env.get('cuda_runtime')}, "
        f"cuDNN {env.get('cudnn')}, NCCL {env.get('nccl')}; Python {env.get('python')}. "
        f"**{passed} of {len(steps)} steps passed** in {_num(document.get('total_seconds'))} s.",
        "",
        "| step | passed | seconds | peak GPU GiB | figures |",
        "|---|---|---|---|---|",
    ]
    for step in steps:
        summary = str(step["figures"].get("summary", "")).replace("|", "\\|")
        title = STEP_TITLES.get(step["name"], step["name"])
        lines.append(
            f"| {title} | {_num(step['passed'])} | {_num(step['seconds'])} | {_num(step['peak_memory_gib'])} | "
            f"{summary} |"
        )
    lines.append("")
    failures = [step for step in steps if not step["passed"]]
    if failures:
        lines += ["## Failures", ""]
        for step in failures:
            lines += [
                f"### {STEP_TITLES.get(step['name'], step['name'])}",
                "",
                "```",
                str(step.get("error")),
                "```",
                "",
            ]
    lines += ["## Figures", ""]
    for step in steps:
        lines += [f"### {STEP_TITLES.get(step['name'], step['name'])}", ""]
        for key, value in _flatten(step["figures"]):
            lines.append(f"- `{key}`: {value}")
        lines.append("")
    lines += ["## Versions", "", "```json", json.dumps(env.get("packages", {}), indent=1), "```", ""]
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Dotted keys and readable values of nested figures (lists of plain values stay on one line)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            if key != "summary":
                yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        flat = all(
            isinstance(item, dict) and not any(isinstance(v, (dict, list)) for v in item.values()) for item in value
        )
        for index, item in enumerate(value):  # a list of flat records (the batch search's trials): one line each
            yield from (
                [(f"{prefix}[{index}]", json.dumps(item, default=str))]
                if flat
                else _flatten(item, f"{prefix}[{index}]")
            )
        return
    text = _num(value) if isinstance(value, (int, float, bool)) or value is None else json.dumps(value, default=str)
    text = text.replace("\n", " ")
    yield prefix, text if len(text) <= 300 else text[:300] + " …"


def write_results(document: dict[str, Any], out: Path, copy_to: Path | None) -> None:
    """``gpu.json`` and ``gpu.md`` in ``out`` (atomically), and copies in ``copy_to`` (the device's $OUT)."""
    from marsvision.atomic import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "gpu.json", json.dumps(finite(document), indent=1, default=str) + "\n")
    atomic_write_text(out / "gpu.md", markdown(finite(document)))
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        for name in ("gpu.json", "gpu.md"):
            shutil.copy2(out / name, copy_to / name)


def install_wheels(folder: Path) -> None:
    """Install the carried wheels (``make gpu-check-prepare``) into ``SITE`` and put it first on the path.

    The device machine reaches no registry: ``--no-index --no-deps``, every wheel named. Child processes (DDP
    ranks) inherit the path through ``PYTHONPATH``.
    """
    wheels = sorted(str(p) for p in folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"{folder}: no wheels; run `make gpu-check-prepare` on a machine that reaches PyPI")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    command += ["--no-cache-dir", "--upgrade", "--disable-pip-version-check", "--target", str(SITE), *wheels]
    subprocess.run(command, check=True)
    _prepend_path(SITE)


def _prepend_path(folder: Path) -> None:
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    importlib.invalidate_caches()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="the same code paths on the CPU at tiny sizes")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for gpu.json and gpu.md (default: benchmarks/results; dry run: a temporary folder)",
    )
    parser.add_argument("--copy-to", type=Path, default=None, help="also copy the results here after every step")
    parser.add_argument("--only", action="append", default=[], help=f"step(s) to run: {', '.join(STEPS)}")
    parser.add_argument("--wheels", type=Path, default=None, help="install these carried wheels first (device)")
    parser.add_argument("--data", type=Path, default=None, help=f"the 256-px AI4Mars folder (default: {GPU_DATA})")
    parser.add_argument("--budget-s", type=float, default=None, help="skip steps that would start after this")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (dry run default: 1)")
    args = parser.parse_args(argv)
    names = selected_names(parser, args.only, STEPS, "step")
    args.only = [name for name in RUN_ORDER if name in names] if names else list(RUN_ORDER)
    return args


def _data_root(given: Path | None) -> Path:
    if given is not None:
        return given
    if GPU_DATA.is_dir():
        return GPU_DATA
    shared = os.environ.get("MARSVISION_SHARED_DATA") or str(ROOT.parent / "shared" / "data")
    return Path(shared) / DATA_NAME


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.wheels is not None:
        install_wheels(args.wheels)
    if importlib.util.find_spec("marsvision") is None:  # not installed (the device machine): the source tree
        _prepend_path(ROOT / "src")
    if not args.dry_run and not torch.cuda.is_available():
        print("the GPU check needs a CUDA GPU; --dry-run runs its code paths on the CPU", file=sys.stderr)
        return 2
    if args.dry_run or args.threads:
        torch.set_num_threads(args.threads or 1)
    device = torch.device("cpu") if args.dry_run else torch.device("cuda", 0)
    plan = DRY_PLAN if args.dry_run else GPU_PLAN
    if args.budget_s is not None:
        plan = dataclasses.replace(plan, budget_s=args.budget_s)
    out = args.out or (Path(tempfile.mkdtemp(prefix="gpu-check-dry-")) if args.dry_run else RESULTS)
    previous: dict[str, Any] = {}
    if len(args.only) < len(STEPS) and (out / "gpu.json").is_file():  # a partial re-run keeps the other steps
        with contextlib.suppress(OSError, ValueError):
            previous = {s["name"]: s for s in json.loads((out / "gpu.json").read_text()).get("steps", [])}
    started = time.monotonic()
    results = {name: step for name, step in previous.items() if name in STEPS}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        ctx = Context(device, args.dry_run, plan, Path(work), _data_root(args.data), started + plan.budget_s)
        ctx.environment = environment(device, args.dry_run)
        for name in args.only:
            entry = run_step(name, ctx)
            results[name] = entry
            status = "passed" if entry["passed"] else "FAILED"
            print(f"gpu-check: {name} {status} in {entry['seconds']} s: {entry['figures'].get('summary', '')}")
            if not entry["passed"]:
                print(str(entry.get("error"))[-1500:], file=sys.stderr)
            steps = [results[n] for n in STEPS if n in results]
            document = {
                "environment": ctx.environment,
                "total_seconds": round(time.monotonic() - started, 1),
                "passed": all(step["passed"] for step in steps),
                "steps": steps,
            }
            write_results(document, out, args.copy_to)
    failed = [name for name in args.only if not results[name]["passed"]]
    print(f"gpu-check: wrote {out / 'gpu.json'} and {out / 'gpu.md'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
