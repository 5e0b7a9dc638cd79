"""Progress of long work: a live bar on a terminal's stderr, else a plain line when it starts and every so often."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from marsvision import progress as progress_module
from marsvision.progress import Progress, amount, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Lines(logging.Handler):
    """The messages of the progress logger (read here, whatever the command line did to its parents)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def said(monkeypatch) -> Iterator[list[str]]:
    lines = Lines()
    logger = logging.getLogger("marsvision.progress")
    monkeypatch.setattr(logger, "level", logging.INFO)
    logger.addHandler(lines)
    yield lines.messages
    logger.removeHandler(lines)


def test_outside_a_terminal_the_work_is_said_once_in_plain_words(said, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert list(progress(range(7), "inspect train", "image")) == list(range(7))
    assert said == ["inspect train: 7 images"]
    assert "\r" not in sys.stderr.getvalue()  # no bar: its redraws would be a line of carriage returns


def test_long_work_outside_a_terminal_says_how_far_it_got(said, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL_S", 0.0)
    with Progress("predict", 5, "image") as shown:
        shown.update(2)
        shown.update(3)
    assert said == [
        "predict: 5 images",
        "predict: 2 of 5 done",
        "predict: 5 of 5 done",
    ]


def test_in_a_terminal_a_live_bar_goes_to_stderr(said, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    for _ in progress(iter(range(3)), "synth msl", "image", total=3):
        pass
    shown = terminal.getvalue()
    assert "\r" in shown and "synth msl" in shown and "3/3" in shown
    assert said == []


def test_an_interrupted_loop_closes_its_bar(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pytest.raises(KeyError), Progress("evaluate test", 4, "batch") as shown:
        shown.update()
        raise KeyError("boom")
    assert shown.bar is not None and shown.bar.disable  # tqdm marks a closed bar disabled


@pytest.mark.parametrize(
    ("count", "unit", "text"),
    [(1, "image", "1 image"), (1204, "image", "1,204 images"), (3, "batch", "3 batches"), (2, "panel", "2 panels")],
)
def test_amounts_read_as_words(count: int, unit: str, text: str):
    assert amount(count, unit) == text
