"""The dataset registry: readers by name (``build_dataset``), format detection (``detect_format``).

A reader is one file with a :class:`~marsvision.data.reader.Reader` dataset class plus one line in
:data:`DATASETS`; building from a config, detection and ``data inspect`` all loop over this table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marsvision.data.ai4mars import Ai4Mars
from marsvision.data.base import describe_folder, require_root
from marsvision.data.errors import DatasetError
from marsvision.data.folders import PairedFolder, UnlabeledFolder
from marsvision.data.msl import MslV1, MslV21
from marsvision.data.reader import Reader

DATASETS: dict[str, type[Reader]] = {
    "ai4mars": Ai4Mars,
    "msl-v1": MslV1,
    "msl-v2.1": MslV21,
    "paired-folder": PairedFolder,
    "unlabeled-folder": UnlabeledFolder,
}
"""Dataset readers by the name used in configs and on the command line, in detection order (the first reader
that recognises a folder names its format; the unlabeled folder, which takes any images, comes last)."""


def dataset_names() -> list[str]:
    """The registered reader names, in detection order."""
    return list(DATASETS)


def reader_class(name: str) -> type[Reader]:
    """The reader registered as ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def register_dataset(name: str, reader: type[Reader], *, before: str | None = None) -> None:
    """Register ``reader`` as ``name`` at run time (plugins, tests), detected before reader ``before`` if given."""
    if name in DATASETS:
        raise ValueError(f"dataset {name!r} is already registered")
    entries = list(DATASETS.items())
    position = [n for n, _ in entries].index(before) if before is not None else len(entries)
    entries.insert(position, (name, reader))
    DATASETS.clear()
    DATASETS.update(entries)


def unregister_dataset(name: str) -> None:
    """Forget the reader registered as ``name``."""
    DATASETS.pop(name, None)


def build_dataset(name: str, **kwargs: Any) -> Any:
    """Construct the reader registered as ``name`` with ``kwargs``; unknown names raise ``ValueError``."""
    return reader_class(name)(**kwargs)


def detect_format(root: str | Path) -> str:
    """Return the registry name of the dataset format found at ``root`` (the first reader that recognises it)."""
    path = require_root(root)
    for name, reader in DATASETS.items():
        if reader.detect(path):
            return name
    raise DatasetError(
        path,
        "no known dataset layout (AI4Mars, MSL v1/v2.1, paired images/+labels/) and no image files; "
        f"found {describe_folder(path)}",
    )
