"""Run many ``marsvision`` command lines in one process, as the console script would, and record what each did.

``python cli_error_driver.py CASES.json RESULTS.json``: each case is ``{"name", "argv", "full_disk"}``; each result
``{"name", "code", "stdout", "stderr", "escaped"}`` where ``escaped`` is the repr of an exception that got out of
``main()`` (it must never happen: the console script would print its traceback). One process instead of one per
case keeps the matrix fast (importing torch and Lightning dominates a command's time).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from marsvision.cli import main


@contextlib.contextmanager
def full_disk_for_checkpoints() -> Iterator[None]:
    """``os.fsync`` fails with ENOSPC (and no file name, as the kernel reports it) for files of a checkpoint."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if ".ckpt" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real_fsync


def run_case(case: dict) -> dict:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    escaped = None
    patch = full_disk_for_checkpoints() if case.get("full_disk") else contextlib.nullcontext()
    with patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(case["argv"])
        except SystemExit as exit_:
            code = exit_.code
        except BaseException as error:  # what would reach the interpreter and print a traceback
            escaped = repr(error)
    return {"name": case["name"], "code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "escaped": escaped}


if __name__ == "__main__":
    cases = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps([run_case(case) for case in cases]))
