"""Shared helpers of the benchmarks: sizes, devices, timing, memory, a bare Lightning trainer."""

from __future__ import annotations

import contextlib
import gc
import statistics
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from math import prod
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

SIZES = ("tiny", "cpu", "gpu")
"""``tiny``: a smoke run of a few seconds per benchmark; ``cpu``: what ``make bench`` runs; ``gpu``: full size."""


def pick(size: str, **values: Any) -> Any:
    """The value for ``size`` from ``tiny=..., cpu=..., gpu=...`` (``gpu`` falls back to ``cpu``)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return values.get(size, values.get("cpu"))


def device_for(size: str) -> torch.device:
    """CUDA when asked for the GPU size and one is present, else the CPU."""
    return torch.device("cuda" if size == "gpu" and torch.cuda.is_available() else "cpu")


def sync(device: torch.device | str) -> None:
    """Wait for queued device work, so that a wall-clock reading covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def stats(seconds: list[float]) -> dict[str, float | int]:
    """Median, min, max (ms) and count of a list of durations in seconds."""
    if not seconds:
        return {"n": 0}
    return {
        "median_ms": 1e3 * statistics.median(seconds),
        "min_ms": 1e3 * min(seconds),
        "max_ms": 1e3 * max(seconds),
        "n": len(seconds),
    }


def time_calls(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    """Durations (s) of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, each synchronised."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


class TensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storages created under this mode (CPU has no allocator statistics).

    Every storage an op returns is counted until Python frees it; inputs that existed before are not.
    With ``count_meta``, storages on the meta device count too: the memory a step *would* need, measured
    without allocating it.
    """

    def __init__(self, count_meta: bool = False) -> None:
        super().__init__()
        self.count_meta = count_meta
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and (self.count_meta or tensor.device.type != "meta"):
                storage = tensor.untyped_storage()
                key = id(storage)
                if key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out


def peak_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak memory allocated while ``fn`` runs, above what was allocated before (bytes)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    tracker = TensorMemory()
    with tracker:
        fn()
    return tracker.peak


def conv_backward_flops(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: list[bool],
    out_shape: Any = None,
    **kwargs: Any,
) -> int:
    """FLOPs of ``aten.convolution_backward``: each gradient asked for (input, weight) costs the forward's
    2 · N · |w| · (positions the filter visits), with |w| = C_out · C_in / groups · kernel area (bias ignored)."""
    positions = prod((x_shape if transposed else grad_out_shape)[2:])
    forward = 2 * x_shape[0] * prod(w_shape) * positions
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def flop_counter() -> FlopCounterMode:
    """torch's FLOP counter, each real operation once: its own formula for a convolution's backward counts the
    weight gradient of a grouped convolution once per group (DeepLabv3+'s 256-group depthwise convolutions,
    SK-ResNet's grouped ones), so :func:`conv_backward_flops` replaces it."""
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops})


def mib(n: float) -> float:
    return round(n / 2**20, 3)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's banner lines (GPU available, etc.) and its warnings about tiny dataloaders."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class StepTimes:
    """Lightning callback: wall time of each training step.

    ``inner``: on_train_batch_start → on_train_batch_end (forward, loss, backward, optimiser, logging calls);
    ``loop``: on_train_batch_start → the next one (also the batch fetch and transfer, and every hook between).
    """

    def __init__(self, device: torch.device) -> None:
        import lightning as L

        class _Callback(L.Callback):
            def on_train_batch_start(cb, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:  # noqa: N805
                sync(device)
                now = time.perf_counter()
                if self._last_start is not None:
                    self.loop.append(now - self._last_start)
                self._last_start = now

            def on_train_batch_end(cb, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:  # noqa: N805
                sync(device)
                assert self._last_start is not None
                self.inner.append(time.perf_counter() - self._last_start)

        self.callback = _Callback()
        self.inner: list[float] = []
        self.loop: list[float] = []
        self._last_start: float | None = None


def lightning_step_times(
    module: Any, config: Any, batch: dict, device: torch.device, warmup: int, steps: int, marsvision: bool
) -> StepTimes:
    """Fit ``module`` on ``warmup + steps + 1`` copies of ``batch`` under marsvision's trainer (``build_trainer``)
    or a bare Lightning one; the returned timer holds the ``steps`` timed steps after the warm-up."""
    from marsvision.training.trainer import build_trainer

    timer = StepTimes(device)
    total = warmup + steps + 1
    with quiet_lightning(), tempfile.TemporaryDirectory() as tmp:
        if marsvision:
            trainer = build_trainer(
                config, Path(tmp), has_validation=False, extra_callbacks=[timer.callback], max_epochs=1
            )
        else:
            trainer = bare_trainer(device, total, [timer.callback], config.trainer.precision)
        trainer.fit(module, train_dataloaders=batch_loader(batch, total))
    # loop[i] ends at the start of step i + 1: drop the warm-up steps, keep the next `steps`
    timer.loop, timer.inner = timer.loop[warmup : warmup + steps], timer.inner[warmup : warmup + steps]
    return timer


def bare_trainer(device: torch.device, max_steps: int, callbacks: list[Any], precision: str = "32") -> Any:
    """A Lightning trainer with nothing around the step: no logger, checkpoints, progress bar or summary."""
    import lightning as L

    return L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_steps=max_steps,
        max_epochs=1,
        precision=precision,  # type: ignore[arg-type]
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


class RepeatBatches(torch.utils.data.Dataset):
    """``length`` references to the same pre-made batch (a dict of tensors): data already in memory."""

    def __init__(self, batch: dict[str, Any], length: int) -> None:
        self.batch = batch
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.batch


def batch_loader(batch: dict[str, Any], length: int) -> torch.utils.data.DataLoader:
    """A loader yielding the same in-memory batch ``length`` times (no collation, no workers)."""
    return torch.utils.data.DataLoader(RepeatBatches(batch, length), batch_size=None, num_workers=0)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def autocast(device: torch.device, precision: str) -> Any:
    """The autocast context of a Lightning ``precision`` ("32": none; "bf16-mixed": bfloat16)."""
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision not in ("32", "32-true"):
        raise ValueError(f"benchmarks support precision 32 and bf16-mixed, got {precision!r}")
    return contextlib.nullcontext()


def matmul_rate(
    device: torch.device, n: int, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> dict[str, float | str]:
    """Measured matmul rate: a ``torch.mm`` of two n×n matrices (2n³ FLOPs) in ``dtype``, median of repeats."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = time_calls(lambda: torch.mm(a, b), device, repeats, warmup=2)
    seconds = statistics.median(times)
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "median_ms": 1e3 * seconds,
        "gflops": 2 * n**3 / seconds / 1e9,
    }


def selected_names(parser: Any, values: list[str], valid: Any, what: str) -> list[str]:
    """The names given to repeated, comma-separated ``--only`` options; an unknown name is a parser error."""
    names = [name for item in values for name in item.split(",") if name]
    unknown = sorted(set(names) - set(valid))
    if unknown:
        parser.error(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(valid)}")
    return names
