"""Run the benchmarks: one JSON object per benchmark on stdout, results/<machine>.json and .md written atomically.

    python benchmarks/run_all.py                      # CPU size, every benchmark (what `make bench` runs)
    python benchmarks/run_all.py --size gpu           # full size, on the GPU where one is present
    python benchmarks/run_all.py --only membank --size tiny   # one benchmark, smoke size (seconds)

``--only`` may be repeated or comma-separated; the other benchmarks already in the results file of the same
machine and size are kept. The header's ``environment`` is the latest run's; each entry also records its own
date, commit and load average at its start, since a results file may merge entries from several runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Idle OpenMP threads sleep instead of spinning: on a machine shared with other jobs, spinning threads of an
# oversubscribed pool slow small ops down ten-fold. Must be set before torch loads; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run_all.py` puts benchmarks/, not the repo, on the path
    sys.path.insert(0, str(ROOT))

BENCHMARKS = (
    "overhead",
    "utilisation",
    "membank",
    "data_pipeline",
    "inference",
    "simclr_vs_lightly",
    "scaling",
    "speedup",
    "contention",
    "breakdown",
)
RESULTS = Path(__file__).resolve().parent / "results"


def machine_name(given: str | None) -> str:
    name = given or os.environ.get("MARSVISION_BENCH_MACHINE") or socket.gethostname() or "machine"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "machine"


def cpu_model() -> str:
    """This machine's CPU model name (wall times compare only between runs on one kind of CPU)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "bf16", "sve")
"""The /proc/cpuinfo flags that decide which kernels (and which precisions) run fast here."""


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return [flag for flag in CPU_FLAGS if flag in value.split()]
    except OSError:
        pass
    return []


def git_commit() -> str | None:
    """The checkout's HEAD commit, with +dirty when it has uncommitted changes; None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def environment(size: str, threads: int, machine: str) -> dict[str, Any]:
    import lightning
    import torch

    import marsvision
    from marsvision.training.precision import cpu_has_native_bf16

    env: dict[str, Any] = {
        "machine": machine,
        "size": size,
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": _cpu_flags(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "torch_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "marsvision": getattr(marsvision, "__version__", None),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    load = _load_average()
    if load is not None:
        env["load_average_at_start"] = load
    return env


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def finite(value: Any) -> Any:
    """The value with NaN and ±inf floats replaced by None, so that the output is strict JSON."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _atomic_write(path: Path, text: str) -> None:
    from marsvision.atomic import atomic_write_text

    atomic_write_text(path, text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--size", choices=("tiny", "cpu", "gpu"), default="cpu", help="tiny: smoke test; cpu: make bench"
    )
    parser.add_argument("--only", action="append", default=[], help=f"benchmark(s) to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    parser.add_argument(
        "--machine", default=None, help="results file name (default: $MARSVISION_BENCH_MACHINE or host)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    from benchmarks.common import selected_names  # after OMP_WAIT_POLICY is set: it imports torch

    args.only = selected_names(parser, args.only, BENCHMARKS, "benchmark") or list(BENCHMARKS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from benchmarks.report import markdown

    if args.size == "gpu" and not torch.cuda.is_available():
        print(
            "--size gpu needs a CUDA GPU (the paper sizes would take hours on a CPU); use --size cpu", file=sys.stderr
        )
        return 2
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    machine = machine_name(args.machine)
    stem = machine if args.size == "cpu" else f"{machine}-{args.size}"
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    previous: dict[str, Any] = {}
    if json_path.is_file():
        try:
            previous = json.loads(json_path.read_text()).get("benchmarks", {})
        except (OSError, ValueError):
            previous = {}
    env = environment(args.size, threads, machine)
    results: dict[str, Any] = {k: v for k, v in previous.items() if k in BENCHMARKS and k not in args.only}
    failed = 0
    for name in args.only:
        load_at_start = _load_average()
        start = time.perf_counter()
        try:
            torch.manual_seed(0)
            result = importlib.import_module(f"benchmarks.{name}").run(args.size)
            status = "failed" if result.get("failed_checks") else "ok"  # figures kept, the run exits 1
            failed += status == "failed"
        except Exception:
            result = {"error": traceback.format_exc(limit=6)[-3000:]}
            status = "error"
            failed += 1
        if torch.get_num_threads() != threads:  # a library changed it: say so and put it back
            result["threads_changed_to"] = torch.get_num_threads()
            torch.set_num_threads(threads)
        entry = {
            "status": status,
            "seconds": round(time.perf_counter() - start, 2),
            "torch_threads": threads,
            "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_commit": env["git_commit"],
            "load_average_at_start": load_at_start,
            "result": finite(result),
        }
        results[name] = entry
        print(json.dumps({"benchmark": name, "size": args.size, **entry}), flush=True)
        document = {"environment": env, "benchmarks": {k: results[k] for k in BENCHMARKS if k in results}}
        args.out.mkdir(parents=True, exist_ok=True)
        _atomic_write(json_path, json.dumps(document, indent=1) + "\n")
        _atomic_write(md_path, markdown(document))
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
