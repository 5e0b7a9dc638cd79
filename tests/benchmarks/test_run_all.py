"""The benchmark runner: a results file that merges runs keeps each entry's own commit and load."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # as in test_accuracy_peers.py: `benchmarks` must be the repository's folder
    sys.path.insert(0, str(ROOT))

from benchmarks import run_all  # noqa: E402


def _fake_benchmark(value: float) -> types.ModuleType:
    module = types.ModuleType("fake")
    module.run = lambda size: {"value": value}  # type: ignore[attr-defined]
    return module


def test_each_entry_keeps_the_commit_and_load_of_its_own_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [("aaaa111", (0.5, 0.4, 0.3), "membank", 1.0), ("bbbb222", (1.9, 1.5, 1.2), "inference", 2.0)]
    for commit, load, name, value in runs:
        monkeypatch.setattr(run_all, "git_commit", lambda commit=commit: commit)
        monkeypatch.setattr(run_all.os, "getloadavg", lambda load=load: load)
        monkeypatch.setitem(sys.modules, f"benchmarks.{name}", _fake_benchmark(value))
        assert run_all.main(["--only", name, "--size", "tiny", "--machine", "m", "--out", str(tmp_path)]) == 0

    document = json.loads((tmp_path / "m-tiny.json").read_text())
    assert document["environment"]["git_commit"] == "bbbb222"  # the header is the latest run's
    provenance = {
        name: (entry["git_commit"], entry["load_average_at_start"], entry["result"])
        for name, entry in document["benchmarks"].items()
    }
    assert provenance == {
        "membank": ("aaaa111", [0.5, 0.4, 0.3], {"value": 1.0}),
        "inference": ("bbbb222", [1.9, 1.5, 1.2], {"value": 2.0}),
    }
    assert "commit aaaa111, load average at start [0.5, 0.4, 0.3]" in (tmp_path / "m-tiny.md").read_text()
