"""The session's walk-through of every command (see cli_walkthrough.py)."""

from __future__ import annotations

import pytest
from cli_walkthrough import Walkthrough, walk


@pytest.fixture(scope="session")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Walkthrough:
    return walk(tmp_path_factory.mktemp("walk"))
