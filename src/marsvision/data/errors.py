"""The errors raised for bad dataset input: a file and what is wrong with it, or a split the dataset lacks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DatasetError(ValueError):
    """A dataset file or folder is missing, malformed or inconsistent.

    The message starts with the offending path so that a user can find the file at once.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnknownSplitError(ValueError):
    """A split the dataset does not have; the message names the option or key it came from and the splits there are.

    Readers raise it with ``key="split"``; a command that took the split from an option re-raises it naming that
    option (``marsvision evaluate --split``).
    """

    def __init__(self, split: str, accepted: Sequence[str], key: str = "split") -> None:
        self.split = split
        self.accepted = tuple(accepted)
        self.key = key
        super().__init__(f"{key} {split!r} is not a split of this dataset; choose one of {', '.join(self.accepted)}")
