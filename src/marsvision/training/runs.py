"""Run directories: resolved config, provenance, per-epoch JSON lines next to the checkpoints."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from marsvision.atomic import atomic_write_text
from marsvision.runfolder import CHECKPOINT_DIR, CONFIG_FILE, FAILED_FILE, META_FILE, METRICS_FILE
from marsvision.training.config import RunConfig, to_dict


def write_json_atomic(path: Path, value: Any) -> None:
    """Atomically write ``value`` as indented JSON."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def git_commit() -> str | None:
    """The commit of the marsvision checkout, or None outside a git tree."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_versions() -> dict[str, str]:
    """Versions of Python and the packages whose behaviour changes results."""
    versions = {"python": platform.python_version()}
    for package in ("marsvision", "torch", "torchvision", "lightning", "torchmetrics", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


RUN_DIR_ENV = "MARSVISION_RUN_DIR"
"""Set by the first process of a distributed run (or by the user for torchrun/SLURM) so every rank shares one run."""


def global_rank() -> int:
    """Rank of the current process from the launcher's environment (Lightning DDP, torchrun, SLURM); 0 alone."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if "SLURM_PROCID" in os.environ and "SLURM_NTASKS" in os.environ and int(os.environ["SLURM_NTASKS"]) > 1:
        return int(os.environ["SLURM_PROCID"])
    local = int(os.environ.get("LOCAL_RANK", 0))
    nodes = int(os.environ.get("NODE_RANK", 0))
    return nodes * int(os.environ.get("LOCAL_WORLD_SIZE", 1)) + local


def create_run_dir(config: RunConfig, argv: list[str] | None = None, resolved: dict[str, Any] | None = None) -> Path:
    """Make ``<runs_root>/<name>-<timestamp>/`` with ``config.yaml`` and ``meta.json``; return its path.

    ``resolved`` goes into ``meta.json`` as is: what references such as ``model.weights=latest:NAME`` named.

    Under DDP every rank calls this: the first process creates the folder and exports its path in
    ``$MARSVISION_RUN_DIR``, which Lightning's launcher passes to the ranks it starts; with torchrun or SLURM
    set ``MARSVISION_RUN_DIR`` yourself so that all ranks agree.
    """
    shared = os.environ.get(RUN_DIR_ENV)
    if shared:
        run_dir = Path(shared)
        run_dir.mkdir(parents=True, exist_ok=True)
        if global_rank() == 0 and not (run_dir / CONFIG_FILE).is_file():
            _write_provenance(run_dir, config, argv, resolved)
        return run_dir
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(config.runs_root)
    run_dir = root / f"{config.name}-{stamp}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{config.name}-{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    _write_provenance(run_dir, config, argv, resolved)
    return run_dir


def _write_provenance(
    run_dir: Path, config: RunConfig, argv: list[str] | None, resolved: dict[str, Any] | None
) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(to_dict(config), sort_keys=False))
    meta = {
        "git_commit": git_commit(),
        "versions": environment_versions(),
        "host": platform.node(),
        "command": argv if argv is not None else sys.argv,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }
    if resolved:
        meta["resolved"] = resolved
    write_json_atomic(run_dir / META_FILE, meta)


@contextmanager
def failure_marked(run_dir: Path) -> Iterator[None]:
    """Write ``FAILED`` (the error, one line) into ``run_dir`` if the block raises, then re-raise.

    ``latest:`` references skip such a run; ``--resume`` removes the mark (see :func:`prepare_resume`).
    """
    try:
        yield
    except BaseException as error:
        if global_rank() == 0:
            reason = " ".join(str(error).split()) or type(error).__name__
            (run_dir / FAILED_FILE).write_text(f"{type(error).__name__}: {reason}\n")
        raise


def prepare_resume(run_dir: Path) -> None:
    """Before a run continues: drop its ``FAILED`` mark and the temp files a killed checkpoint write left."""
    (run_dir / FAILED_FILE).unlink(missing_ok=True)
    for folder in (run_dir, run_dir / CHECKPOINT_DIR):
        for stale in folder.glob(".*.tmp"):  # atomic writes name their temp files .<target>.<random>.tmp
            stale.unlink(missing_ok=True)


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``metrics.jsonl`` (flushed and fsynced so a crash loses at most this line)."""
    with open(run_dir / METRICS_FILE, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of ``metrics.jsonl`` in order (empty when the run logged nothing yet)."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(run_dir: Path, first_epoch_to_drop: int) -> None:
    """Drop records of epochs a resumed run will redo (written after the checkpoint it resumes from)."""
    kept = [r for r in read_metrics(run_dir) if r.get("epoch", -1) < first_epoch_to_drop or r.get("split") == "test"]
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
