"""Caches of decoded, resized arrays, keyed by source files and preprocessing: on disk (``.npy``) and in memory."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from marsvision.data.errors import DatasetError


def source_fingerprint(sources: Sequence[Path | None], tag: str) -> list[object]:
    """``tag`` and each source's resolved path, modification time and size (``None`` for an absent file)."""
    parts: list[object] = [tag]
    for source in sources:
        if source is None:
            parts.append(None)
            continue
        stat = source.stat()
        parts.append([str(source.resolve()), stat.st_mtime_ns, stat.st_size])
    return parts


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
        return hashlib.sha256(json.dumps(source_fingerprint(sources, tag)).encode()).hexdigest()

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


class MemoryCache:
    """Arrays kept in this process's memory up to ``limit_bytes``: the first ones computed are kept (no eviction).

    A key is the source files' :func:`source_fingerprint` with the preprocessing tag, so an edited file is read
    again. Stored arrays are read-only (every caller copies them into a tensor). DataLoader worker processes
    read what their parent had stored when they started but add nothing: a worker's additions would be lost with
    it at the end of the epoch, and each worker would hold its own copy.
    """

    def __init__(self, limit_bytes: int = 0) -> None:
        self.limit_bytes = limit_bytes
        self.arrays: dict[str, np.ndarray] = {}
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0

    def configure(self, limit_bytes: int) -> None:
        """Empty the cache and keep up to ``limit_bytes`` from now on (0: keep nothing)."""
        self.arrays.clear()
        self.limit_bytes = limit_bytes
        self.used_bytes = 0

    def get(self, sources: Sequence[Path | None], tag: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the kept array for ``(sources, tag)``, else ``compute()`` it and keep it if it fits."""
        if self.limit_bytes <= 0:
            return compute()
        key = json.dumps(source_fingerprint(sources, tag))
        array = self.arrays.get(key)
        if array is not None:
            self.hits += 1
            return array
        self.misses += 1
        array = compute()
        if self.used_bytes + array.nbytes <= self.limit_bytes and not _in_loader_worker():
            array.flags.writeable = False
            self.arrays[key] = array
            self.used_bytes += array.nbytes
        return array


def _in_loader_worker() -> bool:
    """Whether this process is a DataLoader worker (torch is loaded wherever one runs)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.utils.data.get_worker_info() is not None


DECODED = MemoryCache()
"""The process's in-memory cache of decoded arrays, shared by every reader (``data.memory_cache_mib`` sets its
size for a run; empty and off until then)."""
