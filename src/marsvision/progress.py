"""Where long work is, on stderr: a live bar in a terminal, a few plain log lines anywhere else.

The same terms as a training run's epochs (``ConsoleProgress`` in :mod:`marsvision.training.callbacks`), for
work counted in items instead: images inspected, written or predicted, t-SNE panels. Outside
a terminal a bar's redraws would arrive as one long line of carriage returns, so there the work is said once
when it starts and again every :data:`PLAIN_INTERVAL_S` seconds while it lasts, through the ``marsvision``
logger (which the command line shows on stderr). Stdout never sees either.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from types import TracebackType
from typing import TypeVar

from tqdm import tqdm

log = logging.getLogger(__name__)
"""The plain lines; the command line shows this logger's INFO records on stderr."""

PLAIN_INTERVAL_S = 30.0
"""Outside a terminal, long work says how far it got this often (a design choice: a few lines a minute at most)."""

T = TypeVar("T")


def amount(count: int, unit: str) -> str:
    """``1 image``, ``1,204 images``, ``3 batches``."""
    plural = unit + ("es" if unit.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{count:,} {unit if count == 1 else plural}"


class Progress:
    """Count the finished items of one piece of work (``what``: ``"inspect train"``) and show how far it got.

    Use as a context manager and call :meth:`update` after each item, or iterate with :func:`progress`.
    """

    def __init__(self, what: str, total: int | None, unit: str) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.said = time.perf_counter()
        self.bar = (
            tqdm(total=total, desc=what, unit=unit, file=sys.stderr, dynamic_ncols=True)
            if sys.stderr.isatty()
            else None
        )
        if self.bar is None:
            log.info(f"{what}: {amount(total, unit)}" if total is not None else what)

    def update(self, count: int = 1) -> None:
        """``count`` more items are finished."""
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.perf_counter()
        if now - self.said >= PLAIN_INTERVAL_S:
            of = f" of {self.total:,}" if self.total is not None else ""
            log.info(f"{self.what}: {self.done:,}{of} done")
            self.said = now

    def close(self) -> None:
        """End the bar (a no-op outside a terminal)."""
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def progress(items: Iterable[T], what: str, unit: str, total: int | None = None) -> Iterator[T]:
    """Yield ``items``, showing how many are done; ``total`` defaults to ``len(items)`` where items have one."""
    count = total if total is not None else (len(items) if isinstance(items, Sized) else None)
    with Progress(what, count, unit) as shown:
        for item in items:
            yield item
            shown.update()
