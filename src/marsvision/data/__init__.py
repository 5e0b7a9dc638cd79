"""marsvision.data: dataset readers, splits and label fractions, views, samplers, synthetic data.

The names below load their submodule on first use (PEP 562), so that ``import marsvision.data.errors`` or the
ONNX prediction path (``predict --onnx``) does not import PyTorch. Code inside marsvision imports from the
submodules directly, which keeps their types visible to mypy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_SUBMODULE_OF_NAME = {
    "Ai4Mars": "ai4mars",
    "detect_ai4mars_layout": "ai4mars",
    "ClassificationDataset": "base",
    "SegmentationDataset": "base",
    "ArrayCache": "cache",
    "IGNORE_INDEX": "classes",
    "MSL_V1_NAMES": "classes",
    "PAPER6": "classes",
    "TERRAIN4": "classes",
    "CLASS_MODES": "classmodes",
    "ClassMode": "classmodes",
    "DatasetError": "errors",
    "PairedFolder": "folders",
    "UnlabeledFolder": "folders",
    "inspect_dataset": "inspect",
    "MslV1": "msl",
    "MslV21": "msl",
    "msl_v1_unlisted_images": "msl",
    "Acquisition": "names",
    "acquisition_sol": "names",
    "edr_to_mask_stem": "names",
    "parse_acquisition": "names",
    "Preprocessing": "preprocess",
    "DATASETS": "registry",
    "build_dataset": "registry",
    "detect_format": "registry",
    "ClassBalancedBatchSampler": "samplers",
    "chronological_split": "splits",
    "complement_indices": "splits",
    "fraction_count": "splits",
    "holdout_split": "splits",
    "nested_fraction_indices": "splits",
    "reshuffle_pool": "splits",
    "SYNTHESIZERS": "synth",
    "synthesize_ai4mars": "synth",
    "synthesize_msl_v1": "synth",
    "synthesize_paired_folder": "synth",
    "apply_joint": "transforms",
    "segmentation_train_transform": "transforms",
    "JointView": "views",
    "MultiView": "views",
    "ViewAugmentation": "views",
    "view_transform": "views",
    "LabelDropped": "wrappers",
    "MappedDataset": "wrappers",
}
__all__ = sorted(_SUBMODULE_OF_NAME)


def __getattr__(name: str) -> Any:
    submodule = _SUBMODULE_OF_NAME.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
