"""Fixtures shared by the whole suite: tiny datasets written into tmp folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from paired_data import write_paired_folder


@pytest.fixture
def paired_folder(tmp_path: Path) -> Path:
    return write_paired_folder(tmp_path / "paired")
