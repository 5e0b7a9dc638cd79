"""Fixtures shared by the whole suite: tiny datasets written into tmp folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from paired_data import write_paired_folder


@pytest.fixture
def paired_folder(tmp_path: Path) -> Path:
    return write_paired_folder(tmp_path / "paired")


@pytest.fixture(autouse=True)
def no_decoded_arrays_kept():
    """Each test starts and ends with the in-memory cache of decoded arrays off (a run turns it on for the process)."""
    from marsvision.data.cache import DECODED

    DECODED.configure(0)
    yield
    DECODED.configure(0)
