"""What the dataset registry asks of every reader: build from a data config, recognise a layout, list splits.

A reader is a ``torch.utils.data.Dataset`` class that also derives from :class:`Reader`. Adding one is one file
with that class plus one line in :data:`marsvision.data.registry.DATASETS` (docs/ARCHITECTURE.md shows an
example); nothing else in marsvision names readers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar


class Reader:
    """Mixin of the dataset readers: construction from a data config, layout detection, inspection."""

    splits: ClassVar[tuple[str, ...]] = ("all",)
    """The splits ``data inspect`` reports (each constructed with ``split=<name>``)."""

    @classmethod
    def detect(cls, root: Path) -> bool:
        """Whether ``root`` holds this reader's layout (the registry asks readers in its order)."""
        raise NotImplementedError

    @classmethod
    def config_options(cls, data: Any) -> dict[str, Any]:
        """The reader's own keyword arguments, taken from the run's data config (``DataConfig``)."""
        return {}

    @classmethod
    def from_config(cls, data: Any, split: str, *, root: str, transform: Callable[..., Any] | None = None) -> Any:
        """The reader for ``split`` of ``root`` with the data config's preprocessing and this reader's options."""
        kwargs: dict[str, Any] = {
            "root": root,
            "split": split,
            "image_size": data.image_size,
            "preprocess": data.preprocess,
            "channels": data.channels,
            "cache_dir": data.cache_dir,
            **cls.config_options(data),
        }
        if transform is not None:
            kwargs["transform"] = transform
        return cls(**kwargs)

    @classmethod
    def inspection_readers(cls, root: Path, **options: Any) -> dict[str, Callable[[], Any]]:
        """Split name → a function building that split's reader for ``data inspect``.

        Readers take their default options, but for the ``options`` given (e.g. ``class_mode="paper6"``).
        """
        build: Callable[..., Any] = cls
        return {split: (lambda split=split: build(root=root, split=split, **options)) for split in cls.splits}  # type: ignore[misc]

    @classmethod
    def inspect_root(cls, root: Path) -> dict[str, Any]:
        """Facts about the whole dataset folder beyond its splits (e.g. images listed in no split)."""
        return {}

    def inspect_details(self) -> dict[str, Any]:
        """Facts about this split beyond counts and class statistics (missing masks, skipped files)."""
        return {}

    def inspect_problems(self) -> list[str]:
        """Problems found while reading this split (files skipped at construction), one message each."""
        return []
