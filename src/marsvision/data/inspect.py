"""Dataset inspection: format, counts per split, images/pixels per class, missing masks, problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marsvision.data.errors import DatasetError
from marsvision.data.registry import detect_format, reader_class


def inspect_dataset(root: str | Path, validate: bool = True, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Describe the dataset at ``root`` as a JSON-able dict.

    Keys: ``root``, ``format``, ``splits`` and ``problems``, plus what the reader says about the whole folder
    (MSL v1: ``unlisted_images``). Per split: ``count``, per-class statistics (images per class; for
    segmentation also pixel counts and shares of labeled pixels as in paper 000 Fig. 6), the reader's own
    details (AI4Mars ``missing_masks`` and ``missing_images``, ...), or the ``error`` that made the split
    unreadable. ``problems`` lists every file that failed the scan and every unreadable split's error, once.
    Every label is read; with ``validate`` every image is decoded too (minutes for the full AI4Mars set).
    ``options`` go to the reader of every split (``class_mode``, ``rover``); an option the format does not take
    is a ``ValueError`` naming it.
    """
    path = Path(root)
    fmt = detect_format(path)
    reader = reader_class(fmt)
    info: dict[str, Any] = {"root": str(path), "format": fmt, "splits": {}, "problems": []}
    problems: list[str] = info["problems"]
    for split, build in reader.inspection_readers(path, **(options or {})).items():
        try:
            dataset = build()
        except TypeError as error:
            raise ValueError(f"{path}: the {fmt} reader takes no option among {sorted(options or {})}") from error
        except DatasetError as error:
            info["splits"][split] = {"count": 0, "error": str(error)}
            if str(error) not in problems:
                problems.append(str(error))  # an unreadable split is a problem too, not only a detail of it
            continue
        entry: dict[str, Any] = {"count": len(dataset)}
        what = f"inspect {split}"
        if hasattr(dataset, "class_statistics"):
            entry.update(dataset.class_statistics(problems, decode=validate, what=what))
        elif validate and hasattr(dataset, "validate"):
            problems.extend(p for p in dataset.validate(what) if p not in problems)
        entry.update(dataset.inspect_details())
        problems.extend(p for p in dataset.inspect_problems() if p not in problems)
        info["splits"][split] = entry
    info.update(reader.inspect_root(path))
    return info
