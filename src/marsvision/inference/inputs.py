"""Command-line inputs (image files, folders searched recursively, glob patterns) → the images to predict."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from marsvision.data.imageio import is_image_file, list_image_files

GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class InputImage:
    """One image to predict and the name (``key``, a relative POSIX path without suffix) its outputs get."""

    path: Path
    key: str


def _is_glob(text: str) -> bool:
    return any(char in GLOB_CHARACTERS for char in text)


def _broken_links(folder: Path) -> list[Path]:
    """Image-named symbolic links below ``folder`` whose target is gone (listed as failed, never skipped silently)."""
    return sorted(p for p in folder.rglob("*") if p.is_symlink() and not p.exists() and is_image_file(p))


def expand_inputs(inputs: Sequence[str]) -> tuple[list[InputImage], list[dict[str, str]]]:
    """Return the images named by ``inputs`` (in order, each once) and a failure entry per input that named none.

    A folder contributes every image below it, named by its path relative to the folder (so same-named
    files in sub-folders stay apart); a file or a glob match is named by its stem. A file named explicitly is
    kept whatever its extension (it may still decode); a glob keeps image files only. A key seen before gets
    ``-2``, ``-3``, … appended, so no output overwrites another.
    """
    found: list[tuple[Path, str]] = []
    failed: list[dict[str, str]] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            images = list_image_files(path)
            broken = _broken_links(path)
            failed.extend({"path": str(link), "error": "broken symbolic link (no target)"} for link in broken)
            if not images and not broken:
                failed.append({"path": text, "error": "folder holds no image files"})
            found.extend((image, image.relative_to(path).with_suffix("").as_posix()) for image in images)
        elif path.is_file():
            found.append((path, path.stem))
        elif _is_glob(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            images = [m for m in matches if m.is_file() and is_image_file(m)]
            if not images:
                failed.append({"path": text, "error": "pattern matches no image files"})
            found.extend((image, image.stem) for image in images)
        else:
            failed.append({"path": text, "error": "no such file or folder"})
    seen_paths: set[Path] = set()
    keys: set[str] = set()
    result: list[InputImage] = []
    for image, key in found:
        resolved = image.resolve()
        if resolved in seen_paths:
            continue
        seen_paths.add(resolved)
        unique, n = key, 1
        while unique in keys:
            n += 1
            unique = f"{key}-{n}"
        keys.add(unique)
        result.append(InputImage(image, unique))
    return result, failed
