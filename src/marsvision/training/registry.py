"""The method registry: ``method:`` name → the Lightning module class that trains it.

Each method is one class (a :class:`~marsvision.training.lightning_base.MarsvisionModule` subclass) that declares
what it needs: its task (``pretrain``, ``segmentation`` or ``classification``, which decides evaluation and
prediction), the data streams each step draws, and the loss parts its weights scale. Adding a method is one file
with its class plus one line below. Entries are ``"module:Class"`` strings, imported on first use, so that reading
a config does not import every method.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marsvision.training.lightning_base import MarsvisionModule

_TRAINING = "marsvision.training"

METHODS: dict[str, str] = {
    "simclr": f"{_TRAINING}.pretrain:SimCLRModule",
    "densecl": f"{_TRAINING}.densecl:DenseCLModule",
    "seg-supervised": f"{_TRAINING}.segmentation:SegmentationModule",
    "wang-seg": f"{_TRAINING}.semiseg:SemiSegModule",
    "seg-cutout-teacher": f"{_TRAINING}.seg_baselines:CutOutTeacher",
    "seg-cutmix-teacher": f"{_TRAINING}.seg_baselines:CutMixTeacher",
    "seg-classmix-teacher": f"{_TRAINING}.seg_baselines:ClassMixTeacher",
    "seg-mean-teacher": f"{_TRAINING}.seg_baselines:MeanTeacher",
    "seg-reco": f"{_TRAINING}.seg_baselines:ReCo",
    "seg-unimatch": f"{_TRAINING}.unimatch:UniMatchSegmentation",
    "seg-cutout-aug": f"{_TRAINING}.seg_aug_baselines:CutOutAugmentation",
    "seg-cutmix-aug": f"{_TRAINING}.seg_aug_baselines:CutMixAugmentation",
    "seg-classmix-aug": f"{_TRAINING}.seg_aug_baselines:ClassMixAugmentation",
    "seg-reco-supervised": f"{_TRAINING}.seg_aug_baselines:ReCoSupervised",
    "seg-reco-cutout-aug": f"{_TRAINING}.seg_aug_baselines:ReCoCutOutAugmentation",
    "seg-reco-cutmix-aug": f"{_TRAINING}.seg_aug_baselines:ReCoCutMixAugmentation",
    "seg-cct": f"{_TRAINING}.cct:CrossConsistencySegmentation",
    "seg-less-within": f"{_TRAINING}.less:LESSWithinImage",
    "seg-less-cross": f"{_TRAINING}.less:LESSCrossImage",
    "wang-cls": f"{_TRAINING}.classification:WangClassification",
    "cls-ce": f"{_TRAINING}.classification:CrossEntropyClassification",
    "cls-focal": f"{_TRAINING}.classification:FocalClassification",
    "cls-class-balanced": f"{_TRAINING}.classification:ClassBalancedClassification",
    "cls-supcon": f"{_TRAINING}.classification:SupConClassification",
    "cls-infonce": f"{_TRAINING}.classification:InfoNCEClassification",
    "cls-supcon-linear": f"{_TRAINING}.supcon_stages:SupConLinearClassifier",
    "cls-supcon-all-layers": f"{_TRAINING}.supcon_stages:SupConAllLayers",
    "cls-pseudo-label": f"{_TRAINING}.classification:PseudoLabelClassification",
    "cls-mixup": f"{_TRAINING}.classification:MixUpClassification",
    "cls-cutmix": f"{_TRAINING}.classification:CutMixClassification",
    "cls-center": f"{_TRAINING}.cls_loss_baselines:CenterLossClassification",
    "cls-triplet": f"{_TRAINING}.cls_loss_baselines:TripletClassification",
    "cls-ldam-drw": f"{_TRAINING}.cls_loss_baselines:LDAMDRWClassification",
    "cls-crt": f"{_TRAINING}.decoupling:ClassifierRetraining",
    "cls-lws": f"{_TRAINING}.decoupling:LearnableWeightScaling",
    "cls-s4l-rotation": f"{_TRAINING}.s4l:S4LRotation",
    "cls-s4l-jigsaw": f"{_TRAINING}.s4l:S4LJigsaw",
    "cls-sscl": f"{_TRAINING}.sscl:SsCLClassification",
    "cls-fixmatch": f"{_TRAINING}.fixmatch:FixMatchClassification",
}
"""Every method by the name used in recipes (``method: wang-seg``) and on the command line."""

_loaded: dict[str, type[MarsvisionModule]] = {}


def method_names() -> list[str]:
    """The registered method names, in registry order."""
    return [*METHODS, *(name for name in _loaded if name not in METHODS)]


def register_method(name: str, module_class: type[MarsvisionModule]) -> None:
    """Register ``module_class`` as method ``name`` at run time (plugins, tests); a taken name is refused."""
    if name in METHODS or name in _loaded:
        raise ValueError(f"method {name!r} is already registered")
    _loaded[name] = module_class


def unregister_method(name: str) -> None:
    """Forget a method registered with :func:`register_method` (bundled methods stay)."""
    if name in METHODS:
        raise ValueError(f"method {name!r} is bundled and cannot be unregistered")
    _loaded.pop(name, None)


def method_class(name: str) -> type[MarsvisionModule]:
    """The module class of method ``name``; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in _loaded:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose one of {method_names()}")
        module_name, class_name = METHODS[name].split(":")
        _loaded[name] = getattr(import_module(module_name), class_name)
    return _loaded[name]
