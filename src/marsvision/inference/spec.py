"""What a predictor needs to know about a trained model: task, class names and its input preprocessing.

A checkpoint carries this in its config; an exported ONNX model carries it in ``metadata_props``. Both
round-trip through :class:`ModelSpec`, so ``predict`` needs no recipe whichever the model file is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from marsvision.data.preprocess import Preprocessing

TASKS = ("segmentation", "classification")
"""Tasks a model can predict for: per-pixel logits ``(N, K, H, W)`` or per-image logits ``(N, K)``."""
LEGACY_TASKS = {"semiseg": "segmentation"}
"""Task names that models exported by marsvision ≤ 0.1 may carry, and what they mean now."""

METADATA_VERSION = "1"
"""Version of the ``metadata_props`` layout written by ``marsvision export``."""

METADATA_KEYS = tuple(
    f"marsvision.{name}" for name in ("metadata_version", "task", "class_names", "image_size", "preprocess", "channels")
)
"""Keys of ``metadata_props`` that ``predict --onnx`` reads (values: strings; class names as a JSON list)."""


@dataclass(frozen=True)
class ModelSpec:
    """Task, class names (index = class id = label PNG value) and the input preprocessing of a trained model."""

    task: str
    class_names: tuple[str, ...]
    image_size: int
    preprocess: str
    channels: int
    class_ids: tuple[int, ...] = ()
    """The dataset's own id of each class index (e.g. MSL v1's 0-24 without 22); empty = the index itself."""

    def __post_init__(self) -> None:
        if self.task in LEGACY_TASKS:
            object.__setattr__(self, "task", LEGACY_TASKS[self.task])
        if self.task not in TASKS:
            raise ValueError(f"cannot predict with a {self.task!r} model; need segmentation or classification")
        if not self.class_names:
            raise ValueError("the model has no class names")
        # Validates preset, size and channels with the training-side rules.
        self.preprocessing()

    @property
    def dense(self) -> bool:
        """Return whether the model predicts a label per pixel (else one class per image)."""
        return self.task == "segmentation"

    def class_id(self, index: int) -> int:
        """Return the dataset's id of class ``index``."""
        return self.class_ids[index] if self.class_ids else index

    @property
    def num_classes(self) -> int:
        """Return K, the number of classes."""
        return len(self.class_names)

    def preprocessing(self) -> Preprocessing:
        """Return the training-time preprocessing (resize to ``image_size``, preset, channels)."""
        return Preprocessing(self.preprocess, self.image_size, self.channels)

    @classmethod
    def from_config(
        cls,
        task: str,
        class_names: Sequence[str],
        image_size: int,
        preprocess: str,
        channels: int,
        class_ids: Sequence[int] = (),
    ) -> ModelSpec:
        """Build a spec from a run config's values; ``image_size`` is resolved like training resolves it."""
        size = Preprocessing(preprocess, image_size, channels).size or image_size
        return cls(task, tuple(class_names), int(size), preprocess, int(channels), tuple(class_ids))

    def to_metadata(self) -> dict[str, str]:
        """Return the ONNX ``metadata_props`` entries (all values are strings, as ONNX requires)."""
        return {
            "marsvision.metadata_version": METADATA_VERSION,
            "marsvision.task": self.task,
            "marsvision.class_names": json.dumps(list(self.class_names)),
            "marsvision.image_size": str(self.image_size),
            "marsvision.preprocess": self.preprocess,
            "marsvision.channels": str(self.channels),
            "marsvision.class_ids": json.dumps([self.class_id(i) for i in range(self.num_classes)]),
        }

    @classmethod
    def from_metadata(cls, props: Mapping[str, str]) -> ModelSpec:
        """Rebuild a spec from ONNX ``metadata_props``; a missing key raises ``ValueError`` naming it."""
        missing = [key for key in METADATA_KEYS if key not in props]
        if missing:
            raise ValueError(f"ONNX model lacks marsvision metadata {missing}; export it with `marsvision export`")
        return cls(
            task=props["marsvision.task"],
            class_names=tuple(json.loads(props["marsvision.class_names"])),
            image_size=int(props["marsvision.image_size"]),
            preprocess=props["marsvision.preprocess"],
            channels=int(props["marsvision.channels"]),
            class_ids=tuple(json.loads(props.get("marsvision.class_ids", "[]"))),
        )
