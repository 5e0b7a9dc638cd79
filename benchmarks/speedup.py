"""Training throughput with each speed switch of issue #16, against marsvision as it was ("today").

For every step kind of :mod:`benchmarks.pipelines` (fine-tuning, semi-supervised segmentation and
classification, SimCLR), the whole pipeline (decode, augmentation, step) is timed with each switch of
:data:`~benchmarks.pipelines.SWITCHES` alone and with ``fast`` (all the default-worthy ones). Repeats alternate
between the variants, so that load from other processes falls on all of them alike; a variant's figure is the
median of its repeats' medians. ``speedup_vs_today`` = today's step time ÷ the variant's (goals: ``fast`` ≥ 2.0
for SimCLR, ≥ 1.6 for the others).

``bf16`` is skipped where the CPU has no native bfloat16 (``trainer.precision=auto`` would train in float32);
``compile`` where inductor has no compiler; ``batched_views`` for the segmentation kinds, which have no views to
batch. ``--size tiny`` times ``today`` and ``fast`` only.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import device_for, pick
from benchmarks.pipelines import KINDS, describe, kind_config, run_pipeline, steps_for, switches_for, synthetic_folder

GOALS = {"simclr": 2.0, "finetune": 1.6, "semiseg": 1.6, "semicls": 1.6}
"""``fast`` ÷ ``today`` throughput each step kind should reach (issue #16)."""
VIEWLESS = ("finetune", "semiseg")
TINY = ("today", "fast")
"""The variants a ``--size tiny`` run times (it checks that the code runs; each switch is a config value)."""


def skipped(kind: str, switch: str, size: str, device: torch.device) -> str | None:
    """Why ``switch`` is not measured for ``kind`` here, or None."""
    from marsvision.training.compilation import compiler_missing
    from marsvision.training.precision import device_has_native_bf16

    if size == "tiny" and switch not in TINY:
        return "only today and fast at the tiny size"
    if switch == "bf16" and not device_has_native_bf16(device):
        return f"no native bfloat16 on this {device.type}"
    if switch == "compile":
        return compiler_missing(device)
    if switch == "batched_views" and kind in VIEWLESS:
        return "no views to batch"
    return None


def measure_kind(kind: str, size: str, root: Path, device: torch.device) -> dict[str, Any]:
    steps = steps_for(size)
    folder = synthetic_folder(kind, size, root, steps)
    cache = root / "cache"
    repeats = pick(size, tiny=1, cpu=3, gpu=3)
    overrides = switches_for(kind)
    reasons = {switch: skipped(kind, switch, size, device) for switch in overrides}
    measured = [switch for switch, reason in reasons.items() if reason is None]
    runs: dict[str, list[dict[str, Any]]] = {switch: [] for switch in measured}
    for _ in range(repeats):
        for switch in measured:
            runs[switch].append(run_pipeline(kind_config(kind, size, folder, cache, steps, overrides[switch])))
    step_ms = {switch: statistics.median(run["step_ms"] for run in results) for switch, results in runs.items()}
    switches: dict[str, Any] = {
        switch: {
            "step_ms": step_ms[switch],
            "per_repeat_step_ms": [run["step_ms"] for run in runs[switch]],
            "images_per_s": statistics.median(run["images_per_s"] for run in runs[switch]),
            "precision": runs[switch][0]["precision"],
            "speedup_vs_today": step_ms["today"] / step_ms[switch],
        }
        for switch in measured
    }
    switches.update({switch: {"skipped": reason} for switch, reason in reasons.items() if reason is not None})
    speedup = switches["fast"]["speedup_vs_today"]
    return {
        **describe(kind_config(kind, size, folder, cache, steps, ())),
        "steps_timed_per_run": steps - 1,
        "repeats": repeats,
        "switches": switches,
        "speedup_vs_today": speedup,
        "goal": f"fast / today >= {GOALS[kind]}",
        "goal_met": speedup >= GOALS[kind],
    }


def run(size: str) -> dict:
    device = device_for(size)
    with tempfile.TemporaryDirectory() as tmp:
        return {"device": device.type, **{kind: measure_kind(kind, size, Path(tmp), device) for kind in KINDS}}
