"""Class modes of the AI4Mars label maps: raw values (+ rover/range masks) → training class ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marsvision.data.classes import IGNORE_INDEX, PAPER6, TERRAIN4, UNLABELED_NAME

ROVER_CLASS = PAPER6.index("rover")
BACKGROUND_CLASS = PAPER6.index("background")


@dataclass(frozen=True)
class ClassMode:
    """How raw label values and masks become class ids.

    ``masks_as_classes``: rover (mxy == 1) → 4 and background (rng == 1) → 5, rover wins (paper 000);
    otherwise masked pixels are ignored. ``unlabeled_as_class``: 255 becomes the next class id
    (paper 000's code; opt-in).
    """

    name: str
    terrain_names: tuple[str, ...]
    masks_as_classes: bool = False
    unlabeled_as_class: bool = False

    @property
    def class_names(self) -> tuple[str, ...]:
        names = self.terrain_names + (("rover", "background") if self.masks_as_classes else ())
        return names + ((UNLABELED_NAME,) if self.unlabeled_as_class else ())

    @property
    def raw_values(self) -> tuple[int, ...]:
        """Values a raw label file may hold: the terrain ids and the ignore value."""
        return (*range(len(self.terrain_names)), IGNORE_INDEX)

    def map(self, raw: np.ndarray, rover: np.ndarray | None, far: np.ndarray | None) -> np.ndarray:
        """Return the class-id map (``uint8``) of a raw label with optional boolean rover and range masks."""
        label = raw.copy()
        if self.masks_as_classes:
            if far is not None:
                label[far] = BACKGROUND_CLASS
            if rover is not None:
                label[rover] = ROVER_CLASS
        else:
            for mask in (far, rover):
                if mask is not None:
                    label[mask] = IGNORE_INDEX
        if self.unlabeled_as_class:
            label[label == IGNORE_INDEX] = len(self.class_names) - 1
        return label


CLASS_MODES = {
    "terrain4": ClassMode("terrain4", TERRAIN4),
    "paper6": ClassMode("paper6", TERRAIN4, masks_as_classes=True),
    "terrain4+unlabeled": ClassMode("terrain4+unlabeled", TERRAIN4, unlabeled_as_class=True),
    "paper6+unlabeled": ClassMode("paper6+unlabeled", TERRAIN4, masks_as_classes=True, unlabeled_as_class=True),
}
"""The AI4Mars class modes by name."""


def get_class_mode(name: str) -> ClassMode:
    """Return the class mode called ``name``; raise ``ValueError`` listing the valid names otherwise."""
    if name not in CLASS_MODES:
        raise ValueError(f"unknown class_mode {name!r}; valid: {', '.join(CLASS_MODES)}")
    return CLASS_MODES[name]


def custom_class_mode(class_names: tuple[str, ...]) -> ClassMode:
    """Return a mode for label files whose values are ``0 … len(class_names) - 1`` and 255."""
    return ClassMode("custom-" + "|".join(class_names), class_names)
