"""Class sets of the datasets marsvision reads, and the one ignore value used everywhere."""

from __future__ import annotations

IGNORE_INDEX = 255
"""Label value of pixels (or images) that take no part in any loss or metric (AI4Mars 'NULL')."""

TERRAIN4 = ("soil", "bedrock", "sand", "big rock")
"""AI4Mars terrain classes, label values 0-3 (DATASETS.md §1)."""

PAPER6 = (*TERRAIN4, "rover", "background")
"""Paper 000's six classes: rover (4) from the mxy mask, background (5) from the rng-30m mask."""

MSL_V1_NAMES = (
    "apxs",
    "apxs cal target",
    "chemcam cal target",
    "chemin inlet open",
    "drill",
    "drill holes",
    "drt front",
    "drt side",
    "ground",
    "horizon",
    "inlet",
    "mahli",
    "mahli cal target",
    "mastcam",
    "mastcam cal target",
    "observation tray",
    "portion box",
    "portion tube",
    "portion tube opening",
    "rems uv sensor",
    "rover rear deck",
    "scoop",
    "sun",
    "turret",
    "wheel",
)
"""MSL surface v1 class names by official id 0-24; id 22 'sun' has no image (DATASETS.md §2)."""

MSL_V1_UNUSED_IDS = (22,)
"""Official MSL v1 ids with no image in any split ('sun'); not among the 24 contiguous ids (DATASETS.md
§2)."""

MSL_V21_NAMES = (
    "Arm cover",
    "Other rover part",
    "Artifact",
    "Nearby surface",
    "Close-up rock",
    "DRT",
    "DRT spot",
    "Distant landscape",
    "Drill hole",
    "Night sky",
    "Float",
    "Layers",
    "Light-toned veins",
    "Mastcam cal target",
    "Sand",
    "Sun",
    "Wheel",
    "Wheel joint",
    "Wheel tracks",
)
"""MSL surface v2.1 class names by id 0-18 (DATASETS.md §3); the reader takes names from class_map.csv."""

UNLABELED_NAME = "unlabeled"
"""Name of the extra class in the opt-in modes that train unlabeled (255) pixels as a class."""
