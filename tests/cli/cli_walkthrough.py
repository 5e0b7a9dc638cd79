"""The README walk-through at test size, each command a subprocess with stdout and stderr captured.

Run once per session (the ``walkthrough`` fixture in conftest.py): every command's ``--json`` output, its stderr
and the folders it left are what the command-line tests look at (the error matrix reuses its checkpoints).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from dataclasses import dataclass, field
from pathlib import Path

SIZE = 32


ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def marsvision(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m marsvision.cli ARGS`` with pipes (not a terminal) and one CPU thread.

    The output is decoded as is: text mode would turn a progress bar's carriage returns into newlines.
    """
    command = [sys.executable, "-m", "marsvision.cli", *map(str, args)]
    done = subprocess.run(command, capture_output=True, timeout=timeout, env={**os.environ, **ONE_THREAD})
    return subprocess.CompletedProcess(command, done.returncode, done.stdout.decode(), done.stderr.decode())


def marsvision_on_a_terminal(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Like :func:`marsvision`, but stderr is a pseudo-terminal (where progress bars belong); stdout stays a pipe."""
    command = [sys.executable, "-m", "marsvision.cli", *map(str, args)]
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows of 100 columns
    shown: list[bytes] = []

    def read() -> None:  # drained while the command runs, so that a full terminal buffer never blocks it
        with contextlib.suppress(OSError):  # EIO: the command closed its end
            while chunk := os.read(terminal, 4096):
                shown.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=stderr, timeout=timeout, env={**os.environ, **ONE_THREAD}
        )
    finally:
        os.close(stderr)
        reader.join(timeout=10)
        os.close(terminal)
    return subprocess.CompletedProcess(command, done.returncode, done.stdout.decode(), b"".join(shown).decode())


@dataclass
class Walkthrough:
    """Where the walk-through wrote things and what each command printed (by step name)."""

    root: Path
    data: Path
    runs: Path
    sweep: Path
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(self, step: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        done = marsvision(*args)
        self.steps[step] = done
        assert done.returncode == 0, f"{step}: exit {done.returncode}\n{done.stderr}"
        return done

    def run_dir(self, prefix: str) -> Path:
        (found,) = [p for p in self.runs.iterdir() if p.name.startswith(prefix)]
        return found


def walk(root: Path) -> Walkthrough:
    """Run the walk-through in ``root``."""
    w = Walkthrough(root, root / "mars", root / "mv", root / "mv" / "sweep")
    tiny = [f"data.root={w.data}", f"data.image_size={SIZE}", f"runs_root={w.runs}", "trainer.device=cpu"]
    w.run("data synth", "data", "synth", w.data, "--kind", "ai4mars", "--num-images", "16", "--size", SIZE, "--json")
    w.run("data inspect", "data", "inspect", w.data, "--json")
    w.run("recipes", "recipes", "--json")
    w.run("model-info", "model-info", "resnet18", "--classes", "4", "--json")
    w.run("pretrain", "pretrain", "-r", "demo-simclr", *tiny, "trainer.max_epochs=1", "data.batch_size=8", "--json")
    w.run(
        "train",
        "train",
        "-r",
        "demo-label-fractions",
        *tiny,
        "trainer.max_epochs=2",
        "model.weights=latest:demo-simclr",
        "--json",
    )
    run = w.run_dir("demo-finetune-")
    w.run("evaluate", "evaluate", run, "--split", "test", "--json")
    images = w.data / "msl" / "images" / "edr"
    w.run(
        "predict",
        "predict",
        "--checkpoint",
        run / "checkpoints" / "best.ckpt",
        images,
        "--out",
        w.root / "pred",
        "--json",
    )
    w.run("export", "export", "--checkpoint", run / "checkpoints" / "best.ckpt", "--onnx", w.root / "m.onnx", "--json")
    w.run("predict onnx", "predict", "--onnx", w.root / "m.onnx", images, "--out", w.root / "pred-onnx", "--json")
    grid = "sweep.grid={data.label_fraction: [0.5, 1.0]}"
    sweep = ["sweep", "-r", "demo-label-fractions", *tiny, "trainer.max_epochs=1", grid, "--out", w.sweep]
    w.run("sweep", *sweep, "--json")
    w.run("sweep again", *sweep)
    w.run("report", "report", w.sweep, "--json")
    w.run(
        "semiseg",
        "train",
        "-r",
        "demo-semiseg",
        *tiny,
        "data.class_mode=terrain4",
        "data.batch_size=4",
        "semiseg.stage_epochs=[1,1,1]",
        "--json",
    )
    return w
