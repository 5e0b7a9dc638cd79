"""marsvision.data: dataset readers, splits and label fractions, views, samplers, synthetic data."""

from marsvision.data.ai4mars import Ai4Mars, detect_ai4mars_layout
from marsvision.data.base import ClassificationDataset, SegmentationDataset
from marsvision.data.cache import ArrayCache
from marsvision.data.classes import IGNORE_INDEX, MSL_V1_NAMES, PAPER6, TERRAIN4
from marsvision.data.classmodes import CLASS_MODES, ClassMode
from marsvision.data.errors import DatasetError
from marsvision.data.folders import PairedFolder, UnlabeledFolder
from marsvision.data.inspect import inspect_dataset, plot_class_distribution
from marsvision.data.msl import MslV1, MslV21, msl_v1_unlisted_images
from marsvision.data.names import Acquisition, acquisition_sol, edr_to_mask_stem, parse_acquisition
from marsvision.data.preprocess import Preprocessing
from marsvision.data.registry import DATASETS, build_dataset, detect_format
from marsvision.data.samplers import ClassBalancedBatchSampler
from marsvision.data.splits import (
    chronological_split,
    complement_indices,
    fraction_count,
    holdout_split,
    nested_fraction_indices,
    reshuffle_pool,
)
from marsvision.data.synth import (
    SYNTHESIZERS,
    synthesize_ai4mars,
    synthesize_msl_v1,
    synthesize_paired_folder,
)
from marsvision.data.transforms import apply_joint, segmentation_eval_transform, segmentation_train_transform
from marsvision.data.views import (
    JointView,
    MultiView,
    joint_view_transform,
    semi_supervised_views,
    simclr_view_transform,
)
from marsvision.data.wrappers import LabelDropped, MappedDataset, chronological_subsets, label_fraction_split

__all__ = [
    "CLASS_MODES",
    "DATASETS",
    "IGNORE_INDEX",
    "MSL_V1_NAMES",
    "PAPER6",
    "SYNTHESIZERS",
    "TERRAIN4",
    "Acquisition",
    "Ai4Mars",
    "ArrayCache",
    "ClassBalancedBatchSampler",
    "ClassMode",
    "ClassificationDataset",
    "DatasetError",
    "JointView",
    "LabelDropped",
    "MappedDataset",
    "MslV1",
    "MslV21",
    "MultiView",
    "PairedFolder",
    "Preprocessing",
    "SegmentationDataset",
    "UnlabeledFolder",
    "acquisition_sol",
    "apply_joint",
    "build_dataset",
    "chronological_split",
    "chronological_subsets",
    "complement_indices",
    "detect_ai4mars_layout",
    "detect_format",
    "edr_to_mask_stem",
    "fraction_count",
    "holdout_split",
    "inspect_dataset",
    "joint_view_transform",
    "label_fraction_split",
    "msl_v1_unlisted_images",
    "nested_fraction_indices",
    "parse_acquisition",
    "plot_class_distribution",
    "reshuffle_pool",
    "segmentation_eval_transform",
    "segmentation_train_transform",
    "semi_supervised_views",
    "simclr_view_transform",
    "synthesize_ai4mars",
    "synthesize_msl_v1",
    "synthesize_paired_folder",
]
