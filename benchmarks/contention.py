"""Step time with another CPU-bound process running beside training, against alone (goal: ≤ 2.5×).

The other process trains a small convolutional network in a loop, as another user's job would: a fresh Python
with torch's default threads (every core) and OpenMP's default wait policy (``OMP_WAIT_POLICY`` removed from its
environment), so that it spins as an unconfigured job does. marsvision runs as the command line runs it: this
process was started by ``run_all.py``, which sets ``OMP_WAIT_POLICY=PASSIVE`` as ``marsvision`` does, and the
trainer caps its threads by ``marsvision.threads``. For the semi-supervised segmentation and classification
steps (:mod:`benchmarks.pipelines`, marsvision's switches as they were before issue #16), alone and beside the
other process, alternating; ``contention_slowdown`` = median step time beside it ÷ alone. With two cores shared
by two jobs that each want both, about 2 is the fair figure; the demo once ran 100× slower.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import pick
from benchmarks.pipelines import describe, kind_config, run_pipeline, steps_for, synthetic_folder

GOAL = 2.5
KINDS = ("semiseg", "semicls")
OTHER_JOB = """
import torch
torch.manual_seed(0)
network = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU()
)
optimizer = torch.optim.SGD(network.parameters(), lr=1e-3)
images = torch.randn(8, 3, 64, 64)
print("ready", torch.get_num_threads(), flush=True)
while True:
    optimizer.zero_grad()
    network(images).square().mean().backward()
    optimizer.step()
"""
"""The other job: a small network trained in a loop until it is stopped."""


@contextmanager
def other_training_job() -> Iterator[int]:
    """Run :data:`OTHER_JOB` in a fresh interpreter with OpenMP's defaults while the block runs; yields its threads."""
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    job = subprocess.Popen([sys.executable, "-c", OTHER_JOB], env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert job.stdout is not None
        ready = job.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError(f"the other job did not start (exit status {job.poll()})")
        yield int(ready[1])
    finally:
        job.terminate()
        job.wait()


def measure_kind(kind: str, size: str, root: Path) -> dict[str, Any]:
    steps = steps_for(size)
    folder = synthetic_folder(kind, size, root, steps)
    config = kind_config(kind, size, folder, root / "cache", steps, ())
    alone: list[float] = []
    beside: list[float] = []
    other_threads: list[int] = []
    for _ in range(pick(size, tiny=1, cpu=2, gpu=2)):
        alone.append(run_pipeline(config)["step_ms"])
        with other_training_job() as threads:
            beside.append(run_pipeline(config)["step_ms"])
        other_threads.append(threads)
    slowdown = statistics.median(beside) / statistics.median(alone)
    return {
        **describe(config),
        "step_ms_alone": alone,
        "step_ms_beside_other_job": beside,
        "other_job_threads": other_threads[0],
        "contention_slowdown": slowdown,
        "goal": f"contention_slowdown <= {GOAL}",
        "goal_met": slowdown <= GOAL,
    }


def run(size: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            **{kind: measure_kind(kind, size, Path(tmp)) for kind in KINDS},
        }
