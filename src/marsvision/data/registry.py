"""The dataset registry: readers by name (``build_dataset``), format detection (``detect_format``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from marsvision.data.ai4mars import Ai4Mars, detect_ai4mars_layout
from marsvision.data.base import describe_folder, require_root
from marsvision.data.errors import DatasetError
from marsvision.data.folders import PairedFolder, UnlabeledFolder
from marsvision.data.imageio import is_image_file, list_image_files
from marsvision.data.msl import V1_CLASS_FILE, V21_CLASS_FILE, MslV1, MslV21

DATASETS: dict[str, type[Dataset[Any]]] = {
    "ai4mars": Ai4Mars,
    "paired-folder": PairedFolder,
    "msl-v1": MslV1,
    "msl-v2.1": MslV21,
    "unlabeled-folder": UnlabeledFolder,
}
"""Dataset readers by the name used in configs and on the command line."""


def build_dataset(name: str, **kwargs: Any) -> Dataset[Any]:
    """Construct the reader registered as ``name`` with ``kwargs``; unknown names raise ``ValueError``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](**kwargs)


def detect_format(root: str | Path) -> str:
    """Return the registry name of the dataset format found at ``root``.

    Checks, in order: AI4Mars (0.1 or 0.5/0.6), MSL v1, MSL v2.1, paired folder, then any images (unlabeled).
    """
    path = require_root(root)
    if detect_ai4mars_layout(path) is not None:
        return "ai4mars"
    if (path / V1_CLASS_FILE).is_file():
        return "msl-v1"
    if (path / V21_CLASS_FILE).is_file() or any(
        (child / V21_CLASS_FILE).is_file() for child in path.iterdir() if child.is_dir()
    ):
        return "msl-v2.1"
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return "paired-folder"
    if any(is_image_file(p) for p in path.iterdir()) or list_image_files(path):
        return "unlabeled-folder"
    raise DatasetError(
        path,
        "no known dataset layout (AI4Mars, MSL v1/v2.1, paired images/+labels/) and no image files; "
        f"found {describe_folder(path)}",
    )
