"""CPU threads: the command line's OpenMP wait policy, the thread cap and one thread per loader worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from marsvision import threads
from marsvision.threads import training_threads, usable_cores

PROBE = """
import json, os, sys
{before}
import marsvision.cli
try:
    marsvision.cli.main(["--help"])
except SystemExit:
    pass
import torch
from marsvision.threads import apply_threads
set_to = apply_threads({requested}, data_workers={workers})
print(json.dumps({{"policy": os.environ.get("OMP_WAIT_POLICY"), "threads": torch.get_num_threads(), "set": set_to}}))
"""


def probe(before: str = "", requested: int | None = None, workers: int = 0, **env: str) -> dict:
    """Run the command line's start in a fresh interpreter; what it set: the wait policy and torch's threads."""
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    code = PROBE.format(before=before, requested=requested, workers=workers)
    out = subprocess.run(
        [sys.executable, "-c", code], env={**environment, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_command_line_makes_idle_openmp_threads_sleep_before_torch_loads():
    assert probe()["policy"] == "PASSIVE"
    assert probe(OMP_WAIT_POLICY="ACTIVE")["policy"] == "ACTIVE", "an explicit value wins"
    assert probe(before="import torch")["policy"] is None, "a program that loaded torch first is left alone"


def test_threads_are_set_as_asked_or_capped_at_the_free_cores():
    assert probe(requested=1)["threads"] == 1
    assert probe(OMP_NUM_THREADS="1")["threads"] == 1, "torch's own count (OMP_NUM_THREADS) is never raised"
    capped = probe(workers=usable_cores())  # as many workers as cores: the training process keeps one thread
    assert capped["threads"] == capped["set"] == 1


def test_the_cap_counts_affinity_quota_and_workers(tmp_path: Path, monkeypatch):
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", quota)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    quota.write_text("max 100000\n")
    assert usable_cores() == 8
    quota.write_text("150000 100000\n")  # 1.5 CPUs of quota: two cores' worth of threads
    assert usable_cores() == 2
    assert training_threads(None, current=64, data_workers=0) == 2
    assert training_threads(None, current=64, data_workers=1) == 1
    assert training_threads(None, current=64, data_workers=5) == 1
    assert training_threads(None, current=1, data_workers=0) == 1
    assert training_threads(3, current=1, data_workers=5) == 3
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", tmp_path / "absent")
    assert training_threads(None, current=64, data_workers=1, processes=2) == 3, "two DDP processes: 4 cores each"


class ThreadCount(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return torch.get_num_threads()


@pytest.mark.skipif(sys.platform != "linux", reason="forked workers")
def test_each_loader_worker_runs_one_thread():
    loader = torch.utils.data.DataLoader(ThreadCount(), batch_size=None, num_workers=1)
    assert [int(count) for count in loader] == [1, 1]


def test_the_trainer_counts_every_streams_workers(tmp_path: Path, monkeypatch):
    from marsvision.training import trainer
    from marsvision.training.config import load_config

    calls = []
    monkeypatch.setattr(trainer, "apply_threads", lambda *args, **kwargs: calls.append((args, kwargs)))
    overrides = ["method=wang-cls", "data.num_workers=2", "trainer.device=cpu", "trainer.threads=3"]
    trainer.build_trainer(load_config(None, overrides), tmp_path, has_validation=False)
    assert calls == [((3, 6), {"processes": 1})], "three streams of two workers each"
