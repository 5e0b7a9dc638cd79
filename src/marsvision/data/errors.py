"""The error raised for bad dataset input: it always names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset file or folder is missing, malformed or inconsistent.

    The message starts with the offending path so that a user can find the file at once.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
