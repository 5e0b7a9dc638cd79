"""A disk cache of decoded, resized arrays (``.npy``), keyed by source files and preprocessing."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from marsvision.data.errors import DatasetError


class ArrayCache:
    """Store arrays computed from source files under ``cache_dir``; never inside a dataset folder.

    The key hashes each source's resolved path, modification time and size, plus a tag describing the
    preprocessing, so an edited source or a different preprocessing never returns a stale array.
    """

    def __init__(self, cache_dir: str | Path, dataset_root: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        if dataset_root is not None:
            root = Path(dataset_root).resolve()
            if self.cache_dir == root or root in self.cache_dir.parents:
                raise DatasetError(self.cache_dir, f"cache_dir must not lie inside the dataset folder {root}")
        self.hits = 0
        self.misses = 0

    def key(self, sources: Sequence[Path | None], tag: str) -> str:
        """Return the hex key of an array made from ``sources`` (``None`` = absent file) with ``tag``."""
        parts: list[object] = [tag]
        for source in sources:
            if source is None:
                parts.append(None)
                continue
            stat = source.stat()
            parts.append([str(source.resolve()), stat.st_mtime_ns, stat.st_size])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get(self, sources: Sequence[Path | None], tag: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached array for ``(sources, tag)``, computing and storing it on a miss."""
        key = self.key(sources, tag)
        path = self.cache_dir / key[:2] / f"{key}.npy"
        if path.is_file():
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                array = None
            if array is not None:
                self.hits += 1
                return array
        self.misses += 1
        array = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.save(stream, array, allow_pickle=False)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return array
