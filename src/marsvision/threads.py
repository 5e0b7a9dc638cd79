"""CPU threads that do not oversubscribe the cores (benchmarks/README.md, "Threads").

When more threads want to run than there are cores, every parallel operation waits at its end for its slowest
thread, and a thread the scheduler has parked costs a whole time slice: small operations then take a hundred
times longer. Two sources of such threads are ours to control:

- idle OpenMP threads that spin instead of sleeping (OpenMP's default wait policy) burn the cores that other
  processes, and our own data-loader workers, need. :func:`prefer_passive_openmp` sets ``OMP_WAIT_POLICY=PASSIVE``
  for the ``marsvision`` command; it must run before torch loads OpenMP, so an explicit value, or a program
  that imported torch first, is left alone;
- more operation threads than the cores this process may use: :func:`training_threads` caps them at its share
  of those cores (the CPU affinity mask, and a container's CPU quota, which torch's own count ignores; shared
  among the training processes of a CPU DDP run) minus the data-loader workers, each of which runs one thread
  (torch sets that in every worker).

This module imports torch only inside :func:`apply_threads`, so the command line can call the rest first.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""cgroup v2 CPU quota: ``"<quota> <period>"`` in µs, or ``"max <period>"`` without a quota."""


def prefer_passive_openmp() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless it is set already or torch (hence OpenMP) is already loaded.

    Returns whether the value now in the environment is ours. A program that imported torch before calling this
    keeps its own OpenMP settings: changing the variable now would not reach the loaded OpenMP runtime, only
    child processes, which would then behave differently from their parent.
    """
    if WAIT_POLICY_ENV in os.environ or "torch" in sys.modules:
        return False
    os.environ[WAIT_POLICY_ENV] = PASSIVE
    return True


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity mask, capped by a cgroup v2 CPU quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks (macOS, Windows)
        cores = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def training_threads(requested: int | None, current: int, data_workers: int, processes: int = 1) -> int:
    """Operation threads of one training process.

    ``requested`` (``trainer.threads``) wins when given; otherwise the ``current`` count (torch's, which follows
    ``OMP_NUM_THREADS``) capped at this process's share of :func:`usable_cores` (``processes`` training processes
    share them) minus the ``data_workers`` that run beside it, at least 1.
    """
    if requested is not None:
        return requested
    return max(1, min(current, usable_cores() // processes - data_workers))


def apply_threads(requested: int | None, data_workers: int, processes: int = 1) -> int:
    """Set torch's operation threads by :func:`training_threads`; return the count set."""
    import torch

    threads = training_threads(requested, torch.get_num_threads(), data_workers, processes)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
