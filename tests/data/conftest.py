"""Shared fixtures of the data tests: the real sample data in ../shared/data and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from marsvision.data.synth import synthesize_ai4mars, synthesize_msl_v1, synthesize_paired_folder

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_root() -> Path:
    """Return the real-data folder: env MARSVISION_SHARED_DATA, else ../shared/data beside the repo."""
    configured = os.environ.get("MARSVISION_SHARED_DATA")
    return Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "data").resolve()


def _require(name: str) -> Path:
    path = shared_data_root() / name
    if path.is_dir():
        return path
    reason = f"real sample data {path} is absent (set MARSVISION_SHARED_DATA to the shared data folder)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def official_sample() -> Path:
    return _require("ai4mars-official-sample")


@pytest.fixture(scope="session")
def paired_256() -> Path:
    return _require("ai4mars-msl-256-train")


@pytest.fixture(scope="session")
def msl_v1_real() -> Path:
    return _require("msl-images-v1")


@pytest.fixture(scope="session")
def synth_ai4mars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ai4mars-0.1"
    synthesize_ai4mars(root, num_images=24, size=64, seed=3, test_fraction=0.25)
    return root


@pytest.fixture(scope="session")
def synth_ai4mars06(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ai4mars-0.6"
    synthesize_ai4mars(root, num_images=18, size=48, seed=4, release="0.6", mer_images=10)
    return root


@pytest.fixture(scope="session")
def synth_msl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "msl-v1"
    synthesize_msl_v1(root, num_images=80, size=40, seed=5)
    return root


@pytest.fixture(scope="session")
def synth_paired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "paired"
    synthesize_paired_folder(root, num_images=12, size=48, seed=6)
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def snapshot():
    """Return a function listing every path below a folder with its size and modification time."""
    return _snapshot
