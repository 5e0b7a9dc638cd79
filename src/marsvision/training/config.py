"""Typed run configuration: dataclass sections, YAML recipes, ``key.sub=value`` overrides.

One section per constructor; field names equal the arguments they feed. A recipe sets values, the command
line overrides them, and every key and value is checked against the dataclass types so that a typo names
itself instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml


@dataclass(frozen=True)
class Registered:
    """Marks a ``str`` field whose value must be a name in a registry (methods, dataset readers).

    The registry is asked when a config is loaded, so names registered later (a plugin, a test) are valid too.
    """

    what: str
    names: Callable[[], list[str]]


def _method_names() -> list[str]:
    from marsvision.training.registry import method_names

    return method_names()


def _dataset_names() -> list[str]:
    from marsvision.data.registry import dataset_names

    return dataset_names()


MethodName = Annotated[str, Registered("method", _method_names)]
DatasetName = Annotated[str, Registered("dataset reader", _dataset_names)]
Preprocess = Literal["plain", "paper000"]
ClassModeName = Literal["terrain4", "paper6", "terrain4+unlabeled", "paper6+unlabeled"]
Rover = Literal["msl", "mer", "all"]
TestAgreement = Literal["min1", "min2", "min3"]
OptimizerName = Literal["sgd", "adam", "adamw", "lars"]
ScheduleName = Literal["constant", "cosine", "poly", "step"]
HeadName = Literal["paper", "relu", "deeplabv3plus"]
WeightsKindName = Literal["auto", "torchvision", "mocov2", "marsvision", "simclrv2"]
DeviceName = Literal["auto", "cpu", "cuda", "gpu", "mps"]
PrecisionName = Literal["32", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64", "64-true"]


@dataclass
class DataConfig:
    """Which images and labels a run reads, and how they are prepared and split."""

    dataset: DatasetName = "paired-folder"
    """Reader name from the dataset registry (ai4mars, paired-folder, msl-v1, msl-v2.1, unlabeled-folder)."""
    root: str = ""
    """Dataset root exactly as downloaded; ``{shared}`` expands to $MARSVISION_SHARED_DATA."""
    image_size: int = 128
    channels: int = 1
    """1 = grayscale (NAVCAM); 3 replicates or keeps colour for ImageNet-style backbones."""
    preprocess: Preprocess = "plain"
    """``paper000``: nearest resize, ×1.5 brighten, clip (SPEC Method A); ``plain``: resize only."""
    class_mode: ClassModeName = "terrain4"
    rover: Rover = "msl"
    test_agreement: TestAgreement = "min3"
    train_split: str = "train"
    eval_split: str = "test"
    test_holdout: int = 0
    """Images of the training split held out as the test set (for folders without an official test split)."""
    chronological: float | None = None
    """If set, order by acquisition time: this first fraction trains, the rest is the test set (paper 002: 0.6)."""
    val_fraction: float = 0.1
    """Share of the labeled set kept for validation and early stopping (inside the label budget; never the test
    set); 0 trains on every labeled image with a fixed schedule."""
    label_fraction: float = 1.0
    label_count: int | None = None
    fraction_seed: int = 0
    """Seed of the nested label subsets: fixed across methods and training seeds so that curves compare."""
    unlabeled_root: str | None = None
    """A folder of unlabeled images used in addition to the unlabeled remainder of the training split."""
    unlabeled_test_images: bool = False
    """Also use the test images, without their labels, as unlabeled data (transductive semi-supervised learning,
    e.g. the MSL v1 val images when they are the evaluation split); the run's ``images_seen`` counts them."""
    reshuffle_trainval: int | None = None
    drop_augmented: bool = False
    batch_size: int = 8
    unlabeled_batch_size: int = 16
    num_workers: int = 0
    cache_dir: str | None = None


@dataclass
class ModelConfig:
    """The network: encoder name from the registry, head variant and initialisation."""

    encoder: str = "r18_1x_sk0"
    head: HeadName = "paper"
    """Segmentation head: ``paper`` (authors' atrous block, no ReLU), ``relu`` (DeepLabv3) or ``deeplabv3plus``."""
    output_stride: Literal[8, 16, 32] | None = None
    """Resolution of the encoder's last map for segmentation: 16 or 8 dilate the last ResNet groups (DeepLab) so
    small rocks survive; None = the head's own (32 for paper 000's atrous head, 16 for DeepLabv3+)."""
    weights: str | None = None
    """Path to initial encoder weights (marsvision pretraining checkpoint, MoCo v2, torchvision, SimCLRv2)."""
    weights_kind: WeightsKindName = "auto"
    projection_dim: int = 128
    projection_layers: int = 3
    """SimCLRv2 uses a 3-layer projection MLP, SimCLR v1 a 2-layer one."""


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (a pure epoch → factor function, see schedules.py)."""

    name: OptimizerName = "adam"
    lr: float = 0.002 * 8**0.5
    """Paper 000 fine-tuning: 0.002·√batch with batch 8 (the paper prints 0.057; the formula gives 0.00566)."""
    backbone_lr: float | None = None
    """Separate learning rate for the pretrained encoder (paper 002 classification: 1e-6); None = lr."""
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: ScheduleName = "constant"
    warmup_epochs: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    poly_power: float = 0.9


@dataclass
class TrainerConfig:
    """Loop, devices and stopping; passed to the Lightning trainer."""

    max_epochs: int = 50
    device: DeviceName = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: PrecisionName = "32"
    early_stopping_patience: int | None = 10
    """Paper 000 trains up to 50 epochs 'until validation convergence': stop after this many epochs without gain."""
    monitor: str = "val/loss"
    log_every_n_steps: int = 10
    limit_train_batches: int | float = 1.0
    """Batches per epoch: an int counts batches, a float is a share of the epoch (Lightning's rule)."""
    progress_bar: bool = True
    channels_last: bool = False
    """NHWC memory layout for weights and image batches: faster convolutions with bf16 on recent GPUs."""


@dataclass
class SimCLRConfig:
    """NT-Xent pretraining (SimCLR, Chen et al. 2020)."""

    temperature: float = 0.1
    """SimCLR's best value for large batches; small CPU batches may prefer 0.2-0.5 (see docs/results)."""
    crop_size: int | None = None
    """Side of the augmented views; None = ``data.image_size`` (smaller crops make CPU pretraining affordable)."""
    crop_scale_min: float = 0.2
    blur_probability: float = 0.5
    jitter_strength: float = 0.5


@dataclass
class SemiSegConfig:
    """Method B segmentation: memory-bank contrastive loss, pseudo labels, three stages (paper 002 §5)."""

    temperature: float = 0.07
    contrastive_weight: float = 0.001
    queue_len: int = 32
    embedding_dim: int = 128
    pseudo_label_threshold: float = 0.9
    stage_epochs: list[int] = field(default_factory=lambda: [60, 60, 60])
    """Epochs of stage 1 (L_s alone), stage 2 (CE + λ L_s) and stage 3 (+ online pseudo labels)."""


@dataclass
class SegBaselineConfig:
    """Settings of the Method B-seg Table 8 baselines with an EMA teacher (``method: seg-*-teacher``, seg_baselines.py).

    Each keeps an EMA teacher of the network and adds a loss on the unlabeled stream.
    """

    ema_decay: float = 0.99
    """Teacher θ' ← α θ' + (1 − α) θ after each step, with α = min(1 − 1/(step + 1), ema_decay)."""
    unsupervised_weight: float = 1.0
    """Weight of the unlabeled-stream loss (pseudo-label cross-entropy, or the Mean Teacher consistency)."""
    rampup_epochs: float = 0.0
    """Sigmoid ramp-up exp(−5 (1 − t)²) of ``unsupervised_weight`` over these epochs (Mean Teacher); 0 = none."""
    pseudo_label_threshold: float = 0.97
    """Teacher confidence a pseudo-labeled pixel needs to count (ReCo's strong threshold); ReCo's hard queries
    lie below it."""
    cutout_ratio: float = 0.5
    """CutOut box side as a fraction of the image side (the box covers ratio² of the image)."""
    cutmix_area: float = 0.5
    """Share of the image covered by the CutMix box (French et al. 2020: one half)."""
    reco_weight: float = 1.0
    reco_temperature: float = 0.5
    reco_num_queries: int = 256
    """Queries per class present in the batch."""
    reco_num_negatives: int = 512
    """Negative keys per query."""
    reco_weak_threshold: float = 0.7
    """Teacher confidence an unlabeled pixel needs to take part in the regional contrast."""


@dataclass
class ClassificationConfig:
    """Method B classification (CE + λ_s inter-class contrastive + λ_u similarity, paper 002 §4) and its baselines."""

    temperature: float = 0.2
    supervised_weight: float = 1.0
    unsupervised_weight: float = 0.2
    contrastive_batch_images_per_class: int = 2
    focal_gamma: float = 2.0
    class_balanced_beta: float = 0.9999
    pseudo_label_threshold: float = 0.95
    mix_alpha: float = 1.0
    labeled_augmentation: Literal["weak", "strong"] = "weak"
    """Augmentation of the cross-entropy's labeled stream: ``weak`` (horizontal flip) or ``strong`` (paper 002's
    contrastive views). Paper 002 (Table 4, "+Strong Aug") reports strong views cost the cross-entropy accuracy;
    the contrastive streams always get the strong views."""


@dataclass
class SweepConfig:
    """What ``marsvision sweep`` varies: a grid of config keys (full product) and the training seeds."""

    grid: dict[str, list[Any]] = field(default_factory=dict)
    """Dotted config key → values, e.g. ``{"data.label_fraction": [0.01, 0.1, 1.0]}``."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Papers 000 and 002 report mean ± std over seeds (002: three)."""


@dataclass
class RunConfig:
    """A whole run: what to do, on which data, with which model, for how long."""

    name: str = "run"
    method: MethodName = "seg-supervised"
    """What trains: a name from the method registry (``marsvision methods`` lists them)."""
    seed: int = 0
    runs_root: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    simclr: SimCLRConfig = field(default_factory=SimCLRConfig)
    semiseg: SemiSegConfig = field(default_factory=SemiSegConfig)
    segbaseline: SegBaselineConfig = field(default_factory=SegBaselineConfig)
    classification: ClassificationConfig = field(default_factory=ClassificationConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


class ConfigError(ValueError):
    """A recipe or override names an unknown key or gives a value of the wrong type."""


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints pass as floats, nothing else is converted."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extras = get_args(tp)
        value = _coerce(value, base, key)
        for extra in extras:
            if isinstance(extra, Registered) and value not in (names := extra.names()):
                raise ConfigError(
                    f"{key}: unknown {extra.what} {value!r}{_suggestion(value, names)}; choose one of {names}"
                )
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(tp))}{_suggestion(value, get_args(tp))}")
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{key}: {value!r} is not a {_describe(tp)}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_type, value_type = get_args(tp)
        return {_coerce(k, key_type, key): _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type,) = get_args(tp)
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        # YAML reads `precision: 32` as an int; a string field accepts the number's text.
        return str(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {_describe(tp)}, got {type(value).__name__} {value!r}")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected int, got bool {value!r}")
    return value


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _suggestion(value: Any, valid: Any) -> str:
    close = difflib.get_close_matches(str(value), [str(v) for v in valid], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    hint = _suggestion(key.rsplit(".", 1)[-1], valid)
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys here: {', '.join(sorted(valid))}")


LEGACY_SEGMENTATION_METHODS = {
    "none": "seg-supervised",
    "cutout": "seg-cutout-teacher",
    "cutmix": "seg-cutmix-teacher",
    "classmix": "seg-classmix-teacher",
    "mean-teacher": "seg-mean-teacher",
    "reco": "seg-reco",
}
"""``segbaseline.method`` values of marsvision ≤ 0.1 → the method they name."""
LEGACY_CLASSIFICATION_METHODS = {
    "ours": "wang-cls",
    **{loss: f"cls-{loss}" for loss in ("ce", "focal", "class-balanced", "supcon", "pseudo-label", "mixup", "cutmix")},
}
"""``classification.loss`` values of marsvision ≤ 0.1 → the method they name."""
LEGACY_TASKS = ("pretrain", "segmentation", "semiseg", "classification")


_legacy_notes_given: set[str] = set()
"""Each legacy mapping is noted once per process, however often a sweep reloads the recipe."""


def migrate_legacy_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Map the three keys that chose a method in marsvision ≤ 0.1 to the one ``method`` key (a copy).

    ``task`` (pretrain | segmentation | semiseg | classification) with ``segbaseline.method`` or
    ``classification.loss`` becomes e.g. ``method: seg-cutmix-teacher`` or ``method: cls-focal``; a
    ``method`` given alongside wins. Says once, on stderr, what it mapped.
    """
    segbaseline = values.get("segbaseline") if isinstance(values.get("segbaseline"), dict) else {}
    classification = values.get("classification") if isinstance(values.get("classification"), dict) else {}
    legacy_segbaseline = segbaseline.get("method") if segbaseline else None
    legacy_loss = classification.get("loss") if classification else None
    if "task" not in values and legacy_segbaseline is None and legacy_loss is None:
        return values
    migrated = {**values}
    task = migrated.pop("task", None)
    if segbaseline:
        migrated["segbaseline"] = {k: v for k, v in segbaseline.items() if k != "method"}
    if classification:
        migrated["classification"] = {k: v for k, v in classification.items() if k != "loss"}
    if task is not None and task not in LEGACY_TASKS:
        raise ConfigError(f"task: {task!r} is not one of {list(LEGACY_TASKS)} (and `task` is replaced by `method`)")
    table: dict[str, str]
    if task == "classification" or (task is None and legacy_loss is not None):
        table, legacy = LEGACY_CLASSIFICATION_METHODS, legacy_loss or "ours"
        key = "classification.loss"
    else:
        table, legacy = LEGACY_SEGMENTATION_METHODS, legacy_segbaseline or "none"
        key = "segbaseline.method"
    if task == "pretrain":
        method = "simclr"
    elif task == "semiseg":
        method = "wang-seg"
    elif legacy not in table:
        raise ConfigError(f"{key}: {legacy!r} is not one of {list(table)} (and `{key}` is replaced by `method`)")
    else:
        method = table[legacy]
    migrated.setdefault("method", method)
    note = (
        "marsvision: note: `task`, `segbaseline.method` and `classification.loss` are replaced by `method`; "
        f"read as method={migrated['method']}"
    )
    if note not in _legacy_notes_given:
        _legacy_notes_given.add(note)
        print(note, file=sys.stderr)
    return migrated


def from_dict(cls: type[Any], values: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    if cls is RunConfig:
        values = migrate_legacy_keys(values)
    types_by_name = _field_types(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in types_by_name:
            raise _unknown_key(prefix + str(key), list(types_by_name))
        tp = types_by_name[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value or {}, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, tp, prefix + key)
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config (what ``config.yaml`` in a run directory holds)."""
    return dataclasses.asdict(config)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"optim.lr=0.01"`` into ``(["optim", "lr"], 0.01)``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of nested ``values`` with each ``key.sub=value`` override set."""
    merged = yaml.safe_load(yaml.safe_dump(values))
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
        node[path[-1]] = value
    return merged


RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> dict[str, str]:
    """Bundled recipe name → its one-line description (the ``description:`` key of the YAML)."""
    recipes = {}
    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        text = yaml.safe_load(path.read_text()) or {}
        recipes[path.stem] = str(text.get("description", "")).strip()
    return recipes


def recipe_path(name_or_path: str) -> Path:
    """Resolve a bundled recipe name or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise ConfigError(f"recipe file {candidate} does not exist")
        return candidate
    bundled = RECIPES_DIR / f"{name_or_path}.yaml"
    if not bundled.is_file():
        names = ", ".join(list_recipes())
        raise ConfigError(f"unknown recipe {name_or_path!r}; bundled recipes: {names}")
    return bundled


def load_recipe_values(name_or_path: str) -> dict[str, Any]:
    """The recipe's values, following ``base:`` (a recipe name or path) so recipes stay short."""
    path = recipe_path(name_or_path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections")
    values.pop("description", None)
    base = values.pop("base", None)
    values = migrate_legacy_keys(values)
    if base is None:
        return values
    return _deep_merge(load_recipe_values(base), values)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


LEGACY_METHOD_KEYS = ("task", "segbaseline.method", "classification.loss")


def migrate_legacy_overrides(overrides: list[str]) -> list[str]:
    """Overrides of the legacy method keys become one ``method=`` override (so they win over the recipe's)."""
    legacy = [text for text in overrides if text.split("=", 1)[0] in LEGACY_METHOD_KEYS]
    if not legacy:
        return overrides
    migrated = migrate_legacy_keys(apply_overrides({}, legacy))
    kept = [text for text in overrides if text not in legacy]
    return [f"method={migrated['method']}", *kept]


def load_config(recipe: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Recipe (bundled name or YAML path) + command-line overrides → a validated :class:`RunConfig`."""
    values = load_recipe_values(recipe) if recipe else {}
    values = apply_overrides(values, migrate_legacy_overrides(overrides or []))
    config: RunConfig = from_dict(RunConfig, values)
    return config
