"""Typed run configuration: dataclass sections, YAML recipes, ``key.sub=value`` overrides.

One section per constructor; field names equal the arguments they feed. A recipe sets values, the command
line overrides them, and every key and value is checked against the dataclass types so that a typo names
itself instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml

from marsvision.evaluation.probabilities import TtaMode


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


@dataclass(frozen=True)
class Bounds:
    """Marks a number field with the interval its values must lie in; a value outside names the key.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; None leaves that side unbounded.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """``in (0, 1]``, ``> 0`` or ``>= 1``."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'<' if self.high_open else '<='} {self.high:g}"

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below


PositiveInt = Annotated[int, Bounds(low=1)]
NonNegativeInt = Annotated[int, Bounds(low=0)]
PositiveFloat = Annotated[float, Bounds(low=0, low_open=True)]
NonNegativeFloat = Annotated[float, Bounds(low=0)]
Fraction = Annotated[float, Bounds(0, 1, low_open=True)]
"""A share that cannot be empty: (0, 1]."""
OpenFraction = Annotated[float, Bounds(0, 1, low_open=True, high_open=True)]
Probability = Annotated[float, Bounds(0, 1)]
"""A probability, a confidence threshold or an EMA decay: [0, 1]."""
ProperShare = Annotated[float, Bounds(0, 1, high_open=True)]
"""A share that must leave something over: [0, 1)."""
Preprocess = Literal["plain", "paper000"]
ClassModeName = Literal["terrain4", "paper6", "terrain4+unlabeled", "paper6+unlabeled"]
Rover = Literal["msl", "mer", "all"]
TestAgreement = Literal["min1", "min2", "min3"]
OptimizerName = Literal["sgd", "adam", "adamw", "lars"]
ScheduleName = Literal["constant", "cosine", "poly", "step"]
HeadName = Literal["paper", "relu", "deeplabv3plus"]
WeightsKindName = Literal["auto", "torchvision", "mocov2", "marsvision", "simclrv2"]
DeviceName = Literal["auto", "cpu", "cuda", "gpu", "mps"]
PrecisionName = Literal["auto", "32", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64", "64-true"]


@dataclass
class DataConfig:
    """Which images and labels a run reads, and how they are prepared and split."""

    dataset: DatasetName = "paired-folder"
    """Reader name from the dataset registry (ai4mars, paired-folder, msl-v1, msl-v2.1, unlabeled-folder)."""
    root: str = ""
    """Dataset root exactly as downloaded; ``{shared}`` expands to $MARSVISION_SHARED_DATA."""
    image_size: PositiveInt = 128
    channels: PositiveInt = 1
    """1 = grayscale (NAVCAM); 3 replicates or keeps colour for ImageNet-style backbones."""
    preprocess: Preprocess = "plain"
    """``paper000``: nearest resize, ×1.5 brighten, clip (SPEC Method A); ``plain``: resize only."""
    class_mode: ClassModeName = "terrain4"
    rover: Rover = "msl"
    test_agreement: TestAgreement = "min3"
    train_split: str = "train"
    eval_split: str = "test"
    test_holdout: NonNegativeInt = 0
    """Images of the training split held out as the test set (for folders without an official test split)."""
    chronological: OpenFraction | None = None
    """If set, order by acquisition time: this first fraction trains, the rest is the test set (paper 002: 0.6)."""
    val_fraction: ProperShare = 0.1
    """Share of the labeled set kept for validation and early stopping (inside the label budget; never the test
    set); 0 trains on every labeled image with a fixed schedule."""
    label_fraction: Fraction = 1.0
    label_count: PositiveInt | None = None
    fraction_seed: int = 0
    """Seed of the nested label subsets: fixed across methods and training seeds so that curves compare."""
    unlabeled_root: str | None = None
    """A folder of unlabeled images used in addition to the unlabeled remainder of the training split."""
    unlabeled_test_images: bool = False
    """Also use the test images, without their labels, as unlabeled data (transductive semi-supervised learning,
    e.g. the MSL v1 val images when they are the evaluation split); the run's ``images_seen`` counts them."""
    reshuffle_trainval: int | None = None
    """MSL surface data: pool the official train and val lists and draw a new split of the same sizes with this
    seed (paper 002 §3: "we reshuffle the training and validation sets"; the test list stays); None = the
    official chronological lists."""
    drop_augmented: bool = False
    batch_size: PositiveInt = 8
    """Images per step and device (the labeled stream's, or the pretraining pairs')."""
    global_batch_size: PositiveInt | None = None
    """Images per step over all devices (``trainer.devices`` × ``trainer.num_nodes``): when set, it fixes
    ``batch_size`` to its share per device, and must divide evenly (SimCLR states its batch this way)."""
    unlabeled_batch_size: PositiveInt = 16
    num_workers: NonNegativeInt = 0
    """DataLoader worker processes per stream; each runs one thread, and the training process runs that many
    fewer (``trainer.threads``). On a machine with few cores, 0 (load in the training process) is usually fastest."""
    cache_dir: str | None = None
    """Folder of decoded, resized arrays (``.npy``) that later runs read instead of decoding the files again."""
    memory_cache_mib: NonNegativeInt = 512
    """Decoded, resized arrays (images and label maps) kept in the training process's memory, up to this many MiB
    (first read, first kept): from the second epoch on a small dataset is not decoded at all. Exact (the arrays
    are the ones decoding gives). Only items loaded in the training process use it (``num_workers: 0``); 0 turns it
    off. 512 MiB holds 30,000 one-channel 128² images or 2,000 at 512²."""


@dataclass
class ModelConfig:
    """The network: encoder name from the registry, head variant and initialisation."""

    encoder: str = "r18_1x_sk0"
    head: HeadName = "paper"
    """Segmentation head: ``paper`` (authors' atrous block, no ReLU), ``relu`` (DeepLabv3) or ``deeplabv3plus``."""
    output_stride: Literal[8, 16, 32] | None = None
    """Resolution of the encoder's last map for segmentation: 16 or 8 dilate the last ResNet groups (DeepLab) so
    small rocks survive; None = the head's own (32 for paper 000's atrous head, 16 for DeepLabv3+). Pretraining
    uses it too (None = 32): DenseCL contrasts the locations of that map."""
    weights: str | None = None
    """Path to initial encoder weights (marsvision pretraining checkpoint, MoCo v2, torchvision, SimCLRv2)."""
    weights_by_encoder: dict[str, str | None] = field(default_factory=dict)
    """Initial weights per encoder name, for sweeps over encoders (paper 002 Table 5: each backbone starts from
    its own ImageNet weights): the entry of ``encoder`` wins over ``weights`` when it is set. On the command
    line: ``model.weights_by_encoder.resnet18=/weights/resnet18.pth``."""
    weights_kind: WeightsKindName = "auto"
    projection_dim: PositiveInt = 128
    projection_layers: PositiveInt = 3
    """SimCLRv2 uses a 3-layer projection MLP, SimCLR v1 a 2-layer one."""
    projection_layer: NonNegativeInt = 0
    """Where paper 000's atrous head sits: 0 = on the encoder's output (SimCLR v1 style, the paper's set-up); k ≥ 1
    = on layer k of the pretrained projection head g, applied to every pixel (SimCLRv2 fine-tunes "from the first
    layer of g"). g (``projection_layers`` layers, ``projection_dim`` wide at the end) is read from
    ``model.weights``."""
    classifier_dropout: ProperShare = 0.0
    """Dropout probability before H_cls (Table 3's Dropout baseline: 0.5, Srivastava et al. 2014's value for
    hidden units); 0 = no dropout layer."""

    @property
    def initial_weights(self) -> str | None:
        """The weights the encoder starts from: ``weights_by_encoder[encoder]`` when set, else ``weights``."""
        return self.weights_by_encoder.get(self.encoder) or self.weights


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (a pure epoch → factor function, see schedules.py)."""

    name: OptimizerName = "adam"
    lr: PositiveFloat = 0.002 * 8**0.5
    """Paper 000 fine-tuning: 0.002·√batch with batch 8 (the paper prints 0.057; the formula gives 0.00566)."""
    backbone_lr: NonNegativeFloat | None = None
    """Separate learning rate for the pretrained encoder (paper 002 classification: 1e-6); None = lr."""
    lr_per_256: PositiveFloat | None = None
    """Learning rate per 256 images of the global batch: when set, ``lr`` = lr_per_256 × global batch / 256, the
    global batch being ``data.batch_size`` × devices × nodes (Goyal et al. 2017's linear scaling; SimCLR: 0.3 for
    LARS)."""
    pretrained_backbone_lr: NonNegativeFloat | None = None
    """Learning rate of the encoder when ``model.weights`` loads pretrained weights (wins over ``backbone_lr``), so
    one sweep over ``model.weights`` fine-tunes a pretrained encoder gently and trains a random one fully; None =
    ``backbone_lr``."""
    allow_frozen_random_backbone: bool = False
    """Train a randomly initialised encoder (no ``model.weights``) at a ``backbone_lr`` below 1 % of ``lr`` anyway.
    Such a backbone barely moves: its features stay random. A run asking for it is refused unless this says the
    frozen random features are meant (paper 002's 1e-6 against 1e-3 assumes a pretrained backbone)."""
    momentum: Probability = 0.9
    weight_decay: NonNegativeFloat = 0.0
    schedule: ScheduleName = "constant"
    warmup_epochs: NonNegativeInt = 0
    milestones: list[NonNegativeInt] = field(default_factory=list)
    gamma: PositiveFloat = 0.1
    poly_power: PositiveFloat = 0.9


@dataclass
class TrainerConfig:
    """Loop, devices and stopping; passed to the Lightning trainer."""

    max_epochs: PositiveInt = 50
    device: DeviceName = "auto"
    devices: PositiveInt = 1
    num_nodes: PositiveInt = 1
    precision: PrecisionName = "32"
    """Lightning's precision. ``auto``: ``bf16-mixed`` (bfloat16 autocast) on a CUDA GPU with bfloat16 and on a CPU
    with native bfloat16 instructions (AVX512-BF16, AMX or Arm's BF16), else ``32``. ``bf16-mixed`` on a CPU
    without them, where bfloat16 is emulated and slower than float32, trains in ``32`` and says so
    (``training/precision.py``). Default ``32``: recipes opt in where the accuracy comparison shows bf16 exact
    enough."""
    early_stopping_patience: NonNegativeInt | None = 10
    """Paper 000 trains up to 50 epochs 'until validation convergence': stop after this many epochs without gain."""
    monitor: str = "val/loss"
    test_time_augmentation: TtaMode = "none"
    """How the run's test evaluation (and ``marsvision evaluate``) predicts: ``flip`` averages the class
    probabilities of each image and of its mirror image, as ``marsvision predict --tta flip`` does."""
    ema_decay: OpenFraction | None = None
    """Validate, save and test an exponential moving average of the weights and buffers instead of the last
    ones: θ̄ ← α θ̄ + (1 − α) θ after every optimiser step, α = ``ema_decay``, θ̄ starting at the first step's
    weights (Lightning's ``EMAWeightAveraging``; the mean teacher of Tarvainen & Valpola 2017 and timm's
    ``ModelEmaV3`` average so). It remembers about 1 / (1 − α) steps. None: the last weights."""
    log_every_n_steps: PositiveInt = 10
    limit_train_batches: Annotated[int | float, Bounds(low=0, low_open=True)] = 1.0
    """Batches per epoch: an int counts batches, a float is a share of the epoch (Lightning's rule)."""
    progress_bar: bool = True
    """A live bar per epoch on stderr when stderr is a terminal; without one (or with false) the command line
    logs one plain line per epoch with its metrics."""
    channels_last: bool = False
    """NHWC memory layout for weights and image batches: faster convolutions with bf16 on recent GPUs."""
    compile: bool = False
    """Compile every network of the method with ``torch.compile`` (inductor; a C++ compiler on the CPU, Triton on
    a GPU; without one the run stays eager and says so). Off by default: the first steps wait for the compiler
    (about a minute per network on a small CPU) and every new batch shape compiles again, which short runs do not
    earn back."""
    threads: PositiveInt | None = None
    """Threads of the training process's operations (``torch.set_num_threads``). None: torch's own count, capped
    at the cores this process may use (CPU affinity and a container's CPU quota; divided among the ``devices``
    processes of DDP on CPUs) minus the DataLoader workers of every stream, so that no more threads run than there
    are cores (benchmarks/README.md, "Threads")."""


@dataclass
class SimCLRConfig:
    """NT-Xent pretraining (SimCLR, Chen et al. 2020)."""

    temperature: PositiveFloat = 0.1
    """SimCLR's best value for large batches; small CPU batches may prefer 0.2-0.5 (see docs/results)."""
    crop_size: PositiveInt | None = None
    """Side of the augmented views; None = ``data.image_size`` (smaller crops make CPU pretraining affordable)."""
    crop_scale_min: Fraction = 0.2
    """Smallest area share of the random resized crop (SimCLR: 0.08 on ImageNet; 0.2, MoCo v2's value (Chen et
    al. 2020b), keeps more of the small rover images)."""
    blur_probability: Probability = 0.5
    """Chance of a Gaussian blur, σ in [0.1, 2.0], kernel 10 % of the view's side (SimCLR appendix A: 0.5)."""
    chunk_size: PositiveInt | None = None
    """Views per forward chunk under activation checkpointing: the device keeps one chunk's activations at a
    time, and NT-Xent still sees every view of the global batch as a negative (``training/chunked.py``); None =
    the whole batch in one pass. BatchNorm then normalises each chunk with its own statistics."""
    jitter_strength: NonNegativeFloat = 0.5
    """s: brightness, contrast and saturation factors within 1 ± 0.8 s, hue within ± 0.2 s (SimCLR appendix A; its
    CIFAR-10 strength is 0.5, ImageNet's 1.0); one channel gets brightness and contrast only."""
    jitter_probability: Probability = 0.8
    """Chance of the colour jitter (SimCLR appendix A: 0.8)."""
    grayscale_probability: Probability = 0.2
    """Chance that a colour view becomes gray (SimCLR appendix A: 0.2); nothing for one channel."""
    batched_views: bool = False
    """Make the two views of a whole batch at once on the training device (``training/batch_views.py``) instead
    of image by image in the data loader: the same operations and parameters, drawn per image; the crop is
    resampled bilinearly without antialiasing and the jitter's order is fixed (brightness, contrast, saturation,
    hue). The CPU pretraining recipes turn it on: fine-tuned after it, DeepLabv3+ scored within the seed spread of
    the per-image views (docs/results: the accuracy comparison). Off here, for GPU recipes not measured with it."""


@dataclass
class DenseCLConfig:
    """DenseCL's dense term on top of SimCLR's (Wang et al. 2021; ``losses/dense_contrastive.py``).

    Both terms use ``simclr.temperature`` (DenseCL: one τ, 0.2) and SimCLR's views; the correspondence is found on
    the encoder's last map, whose resolution ``model.output_stride`` sets (16: the map DeepLabv3+ fine-tunes on).
    """

    dense_weight: NonNegativeFloat = 1.0
    """w in L_global + w L_dense: 1 is DenseCL's λ = 0.5 in (1 − λ) L_global + λ L_dense, up to a factor ½ that
    Adam does not see (``training/densecl.py``)."""
    embedding_dim: PositiveInt = 128
    """D, the width of the dense embeddings (DenseCL: 128)."""


@dataclass
class SemiSegConfig:
    """Method B segmentation: memory-bank contrastive loss, pseudo labels, three stages (paper 002 §5)."""

    temperature: PositiveFloat = 0.07
    contrastive_weight: NonNegativeFloat = 0.001
    queue_len: PositiveInt = 32
    embedding_dim: PositiveInt = 128
    pseudo_label_threshold: Probability = 0.9
    stage_epochs: list[NonNegativeInt] = field(default_factory=lambda: [60, 60, 60])
    """Epochs of stage 1 (L_s alone), stage 2 (CE + λ L_s) and stage 3 (+ online pseudo labels)."""


@dataclass
class SegBaselineConfig:
    """Settings of the Method B-seg Table 8 baselines with an EMA teacher (``method: seg-*-teacher``, seg_baselines.py).

    Each keeps an EMA teacher of the network and adds a loss on the unlabeled stream.
    """

    ema_decay: Probability = 0.99
    """Teacher θ' ← α θ' + (1 − α) θ after each step, with α = min(1 − 1/(step + 1), ema_decay)."""
    unsupervised_weight: NonNegativeFloat = 1.0
    """Weight of the unlabeled-stream loss (pseudo-label cross-entropy, or the Mean Teacher consistency)."""
    rampup_epochs: NonNegativeFloat = 0.0
    """Sigmoid ramp-up exp(−5 (1 − t)²) of ``unsupervised_weight`` over these epochs (Mean Teacher); 0 = none."""
    pseudo_label_threshold: Probability = 0.97
    """Teacher confidence a pseudo-labeled pixel needs to count (ReCo's strong threshold); ReCo's hard queries
    lie below it."""
    cutout_ratio: Fraction = 0.5
    """CutOut box side as a fraction of the image side (the box covers ratio² of the image)."""
    cutmix_area: Fraction = 0.5
    """Share of the image covered by the CutMix box (French et al. 2020: one half)."""
    reco_weight: NonNegativeFloat = 1.0
    reco_temperature: PositiveFloat = 0.5
    reco_num_queries: PositiveInt = 256
    """Queries per class present in the batch."""
    reco_num_negatives: PositiveInt = 512
    """Negative keys per query."""
    reco_weak_threshold: Probability = 0.7
    """Teacher confidence an unlabeled pixel needs to take part in the regional contrast."""


@dataclass
class CCTConfig:
    """Cross-consistency training (Ouali et al. 2020; ``method: seg-cct``), a Table 8 baseline of paper 002.

    Defaults are CCT's public configuration (``configs/config.json``); its guided perturbations (cutout, context
    and object masking) need a background class to tell objects from context and are left out (see cct.py).
    """

    unsupervised_weight: NonNegativeFloat = 30.0
    """w_u, the weight of the consistency loss once ramped up (CCT: ``unsupervised_w`` 30)."""
    rampup: Probability = 0.1
    """Share of the run's epochs over which w_u rises along exp(−5 (1 − t)²) (CCT: ``ramp_up`` 0.1)."""
    dropout_decoders: NonNegativeInt = 6
    """Auxiliary decoders whose input goes through spatial dropout (CCT: ``drop`` 6)."""
    dropout_rate: ProperShare = 0.5
    """Channel dropout probability of those decoders (CCT: ``drop_rate`` 0.5, ``spatial``)."""
    feature_drop_decoders: NonNegativeInt = 6
    """Auxiliary decoders whose input loses its most active region (CCT: ``feature_drop`` 6)."""
    feature_noise_decoders: NonNegativeInt = 6
    """Auxiliary decoders whose input is multiplied by 1 + uniform noise (CCT: ``feature_noise`` 6)."""
    noise_range: NonNegativeFloat = 0.3
    """The noise is drawn from U(−noise_range, noise_range) (CCT: ``uniform_range`` 0.3)."""
    vat_decoders: NonNegativeInt = 2
    """Auxiliary decoders whose input gets a virtual adversarial perturbation (CCT: ``vat`` 2)."""
    vat_xi: PositiveFloat = 1.0e-6
    """Step of the power iteration that finds the adversarial direction (CCT: ``xi`` 1e-6)."""
    vat_eps: NonNegativeFloat = 2.0
    """Norm of the adversarial perturbation, per image (CCT: ``eps`` 2.0)."""


@dataclass
class LESSConfig:
    """LESS (Zhao et al. 2021; ``method: seg-less-within`` and ``seg-less-cross``), a Table 8 baseline of paper 002.

    Loss settings are the authors' public code's; paper 002 and Zhao et al.'s abstract give no schedule for
    this data, so the stage lengths and the resize are our choices.
    """

    stage_epochs: list[NonNegativeInt] = field(default_factory=lambda: [60, 60, 60])
    """Epochs of the three stages: the pseudo-labeler trained with cross-entropy on the labeled images; the
    contrastive pretraining on labeled and (fixed) pseudo-labeled images; the cross-entropy fine-tuning (our
    choice: paper 002's 60-epoch stages)."""
    temperature: PositiveFloat = 0.07
    """τ of the pixel contrastive loss (Zhao et al.'s code: 0.07)."""
    projection_layers: PositiveInt = 2
    """Layers of the 1×1-convolution projection head (Zhao et al.'s code: 2)."""
    projection_channels: PositiveInt = 256
    """Width of the projection head (Zhao et al.'s code: 256)."""
    resize: PositiveInt = 64
    """Side of the feature map the loss is computed on (every pixel pair counts, so the cost grows as side⁴;
    the authors' code takes it as an argument without a default: our choice)."""


@dataclass
class ClassificationConfig:
    """Method B classification (CE + λ_s inter-class contrastive + λ_u similarity, paper 002 §4) and its baselines."""

    temperature: PositiveFloat = 0.2
    supervised_weight: NonNegativeFloat = 1.0
    unsupervised_weight: NonNegativeFloat = 0.2
    contrastive_batch_images_per_class: PositiveInt = 2
    focal_gamma: NonNegativeFloat = 2.0
    class_balanced_beta: ProperShare = 0.9999
    pseudo_label_threshold: Probability = 0.95
    mix_alpha: PositiveFloat = 1.0
    labeled_augmentation: Literal["weak", "strong"] = "weak"
    """Augmentation of the cross-entropy's labeled stream: ``weak`` (horizontal flip) or ``strong`` (paper 002's
    contrastive views). Paper 002 (Table 4, "+Strong Aug") reports strong views cost the cross-entropy accuracy;
    the contrastive streams always get the strong views."""
    strong_rotation_degrees: NonNegativeFloat = 30.0
    """Paper 002's strong views: shape (horizontal and vertical flip, random resized crop, rotation) then pixel
    augmentations (colour jitter, desaturation, Gaussian blur). The paper names the operations without values;
    these defaults are ours. Rotation by an angle drawn from ± this many degrees, corners filled black."""
    strong_crop_scale_min: Fraction = 0.3
    """Smallest area share of the strong views' random resized crop (ours; SimCLR's 0.08 loses the small terrain
    features the classes are told apart by)."""
    strong_jitter_strength: NonNegativeFloat = 0.5
    """s of SimCLR's colour jitter (brightness, contrast, saturation within 1 ± 0.8 s, hue within ± 0.2 s), at
    SimCLR's CIFAR-10 strength 0.5."""
    strong_jitter_probability: Probability = 0.8
    """Chance of the colour jitter (SimCLR's 0.8)."""
    strong_grayscale_probability: Probability = 0.2
    """Chance of desaturation of a colour view (SimCLR's 0.2)."""
    strong_blur_probability: Probability = 0.5
    """Chance of a Gaussian blur, σ in [0.1, 2.0] (SimCLR's 0.5)."""
    batched_views: bool = False
    """Augment whole batches on the training device instead of image by image in the data loader: the strong
    views, the weak flips and the labeled stream's augmentation (``training/batch_views.py``; see
    ``simclr.batched_views`` for what differs). Off: in whole FixMatch runs at 128 px it saved no time and scored
    within the seed spread, lower on average (docs/results: batched classification views)."""


@dataclass
class ClsBaselineConfig:
    """Settings of the Table 3 baselines beyond cross-entropy (``method: cls-center``, ``cls-triplet`` ...).

    Paper 002 gives none of them: each default is the original paper's, each weight scales a part added to L_ce.
    """

    center_weight: NonNegativeFloat = 0.003
    """λ of the center loss (Wen et al. 2016: λ = 0.003 for their face models)."""
    center_alpha: Probability = 0.5
    """α, the rate of the center update c_j ← c_j − α Δc_j (Wen et al. 2016: 0.5)."""
    triplet_weight: NonNegativeFloat = 1.0
    """Weight of the triplet loss next to L_ce (FaceNet trains it alone; 1 is our choice)."""
    triplet_margin: NonNegativeFloat = 0.2
    """α, the margin between squared distances on the unit sphere (Schroff et al. 2015: 0.2)."""
    triplet_mining: Literal["semi-hard", "batch-all"] = "semi-hard"
    """``semi-hard``: every anchor-positive pair with its nearest negative beyond the positive (Schroff et al.
    2015, the selection FaceNet trains with); ``batch-all``: the mean of the hinge over every triplet."""
    ldam_max_margin: NonNegativeFloat = 0.5
    """Δ of the rarest class; Δ_j = C / n_j^(1/4) is scaled to it (Cao et al. 2019, public code: 0.5)."""
    ldam_scale: PositiveFloat = 30.0
    """s, the scale of the cosine logits (Cao et al. 2019, public code: 30)."""
    drw_epoch: NonNegativeInt = 20
    """Epoch from which DRW re-weights the classes: Cao et al. start at their first learning-rate decay (160 of
    200 CIFAR epochs); paper 002's first decay is at epoch 20."""
    drw_beta: ProperShare = 0.9999
    """β of the class-balanced weights DRW switches to (Cao et al. 2019 use Cui et al.'s 0.9999)."""
    decoupling_stage_epochs: list[NonNegativeInt] = field(default_factory=lambda: [30, 10])
    """Decoupling (Kang et al. 2020): epochs of stage 1 (cross-entropy, instance-balanced: paper 002's 30-epoch
    schedule) and stage 2 (classifier re-training on class-balanced batches over the frozen backbone: Kang et al.
    re-train cRT for 10 epochs and LWS for 5 on ImageNet-LT)."""
    supcon_stage_epochs: list[NonNegativeInt] = field(default_factory=lambda: [20, 10])
    """SupCon as Khosla et al. 2020 train it (paper 002's Table 3 rows "SupCon + Linear Classifier" and "+ All
    Layers"): epochs of stage 1 (the SupCon loss alone) and stage 2 (the cross-entropy, on the frozen backbone or on
    all layers). Paper 002 gives no split of its 30 epochs: 20 + 10 is our choice."""
    supcon_temperature: PositiveFloat = 0.1
    """τ of the two-stage SupCon (Khosla et al. 2020 found 0.1 best)."""
    s4l_weight: NonNegativeFloat = 1.0
    """w of the self-supervised loss of S4L (Zhai et al. 2019, public code: ``rot_loss_weight`` 1.0)."""
    jigsaw_permutations: PositiveInt = 100
    """Size of the jigsaw permutation set (Kolesnikov et al. 2019: ``permutations_100_max``)."""
    jigsaw_permutations_per_image: PositiveInt = 8
    """Puzzles per image and step, from one draw for the batch (Kolesnikov et al. 2019: ``perm_subset_size`` 8)."""
    jigsaw_patch_fraction: Fraction = 0.75
    """Tile side as a share of its grid cell (Kolesnikov et al. 2019: 64-pixel tiles in 85-pixel cells)."""
    jigsaw_embedding_dim: PositiveInt = 1000
    """Per-tile embedding width (Kolesnikov et al. 2019: ``embed_dim`` 1000)."""
    jigsaw_hidden_dim: PositiveInt = 4096
    """Width of the permutation head's hidden layer (AlexNet's fc7, as Kolesnikov et al. 2019)."""
    sscl_contrastive_weight: NonNegativeFloat = 1.0
    """SsCL (Zhang et al., TMM 2022, arXiv 2105.07387): weight of the neighbour contrastive loss of the contrastive
    branch next to L_ce. The sources reachable here give no value: 1, the weight of the joint losses SsCL
    optimises end to end, is our choice."""
    sscl_pseudo_weight: NonNegativeFloat = 1.0
    """SsCL: weight of the cross-entropy branch's loss on unlabeled images against their co-calibrated pseudo
    labels (our choice, as FixMatch's λ_u = 1)."""
    sscl_temperature: PositiveFloat = 0.2
    """SsCL: τ of the contrastive similarities, in the loss and in the co-calibration (MoCo v2's 0.2: SsCL's branch
    is "the well-known contrastive loss in self-supervised learning"; no SsCL value was reachable)."""
    sscl_threshold: Probability = 0.95
    """SsCL: confidence of the co-calibrated prediction a pseudo label needs to train the classifier and to bring
    its nearest neighbours in as positives (FixMatch's 0.95; ours for SsCL)."""
    sscl_neighbours: NonNegativeInt = 5
    """SsCL: nearest neighbours, in the classifier's output space, taken as positives of a confident query besides
    its own key (our choice; 0 leaves instance discrimination)."""
    sscl_queue_size: PositiveInt = 4096
    """SsCL: keys kept from earlier steps, with their class distributions (MoCo keeps 65,536 of ImageNet's 1.28M
    images; 4,096 is about a tenth of MSL's labeled and PDS unlabeled images together: our choice)."""


@dataclass
class SegmentationConfig:
    """The supervised cross-entropy every segmentation method trains with."""

    class_weighting: Literal["none", "inverse-sqrt-frequency"] = "none"
    """Class weights of the labeled cross-entropy from the labeled pixels' class frequencies f_c: ``none`` (SPEC,
    Method A: no weighting), or w_c ∝ 1/√f_c scaled to a pixel-weighted mean of 1, so that rare sand and big rock
    count more without changing the loss's scale (the square root softens inverse-frequency weights, which
    over-predict rare classes)."""


@dataclass
class ConsistencyConfig:
    """Weak-to-strong consistency: UniMatch (Yang et al., CVPR 2023) and FixMatch (Sohn et al., NeurIPS 2020).

    L = L_x + w_s · mean_k L_s,k + w_fp · L_fp: L_x the cross-entropy on labeled images; L_s,k the confident
    pseudo-label cross-entropy on strong view k of an unlabeled image, the pseudo labels being the model's own
    arg-max on the weak view where its confidence reaches τ; L_fp the same on the weak view decoded from
    dropped-out encoder features (UniMatch's feature perturbation; segmentation only).
    """

    threshold: Probability = 0.95
    """τ (FixMatch and UniMatch: 0.95)."""
    strong_weight: NonNegativeFloat = 1.0
    """w_s: FixMatch's λ_u = 1; UniMatch's ½(¼ + ¼) for two views against ½ for L_x is the same ratio."""
    feature_perturbation_weight: NonNegativeFloat = 1.0
    """w_fp: UniMatch's ½ against ½ for L_x; 0 turns UniMatch into FixMatch with two strong views."""
    feature_dropout: ProperShare = 0.5
    """Channel dropout on the encoder features of the feature-perturbed view (UniMatch: 0.5)."""
    strong_views: PositiveInt = 2
    """Strong views per unlabeled image (UniMatch's dual stream: 2; FixMatch: 1)."""
    cutmix_probability: Probability = 0.5
    """Chance that a strong view pastes a box of another unlabeled image, with its pseudo labels (UniMatch: 0.5)."""
    cutmix_area: Fraction = 0.25
    """Share of the image the CutMix box covers (UniMatch draws 0.02-0.4)."""
    jitter: ProperShare = 0.5
    """Brightness and contrast factors of the strong views are drawn from [1 − jitter, 1 + jitter]."""
    jitter_probability: Probability = 0.8
    grayscale_probability: Probability = 0.2
    blur_probability: Probability = 0.5


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
    densecl: DenseCLConfig = field(default_factory=DenseCLConfig)
    semiseg: SemiSegConfig = field(default_factory=SemiSegConfig)
    segbaseline: SegBaselineConfig = field(default_factory=SegBaselineConfig)
    cct: CCTConfig = field(default_factory=CCTConfig)
    less: LESSConfig = field(default_factory=LESSConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    classification: ClassificationConfig = field(default_factory=ClassificationConfig)
    clsbaseline: ClsBaselineConfig = field(default_factory=ClsBaselineConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


class ConfigError(ValueError):
    """A recipe or override names an unknown key or gives a value of the wrong type."""


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", re.ASCII)
"""``1e-6``: YAML 1.1 (PyYAML) reads a number in exponent notation without a dot as text; YAML 1.2 reads it as a
float, as a user means it."""


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints and ``1e-6`` text pass as floats, nothing else converts."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extras = get_args(tp)
        value = _coerce(value, base, key)
        for extra in extras:
            if isinstance(extra, Registered) and value not in (names := extra.names()):
                raise ConfigError(
                    f"{key}: unknown {extra.what} {value!r}{_suggestion(value, names)}; choose one of {names}"
                )
            if isinstance(extra, Bounds) and not extra.contains(value):
                raise ConfigError(f"{key} must be {extra.describe()}, got {value!r}")
        return value
    if origin is Literal:
        choices = get_args(tp)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in choices:
            value = str(value)  # `trainer.precision=32` reads as a number; the choice is its text
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {list(choices)}{_suggestion(value, choices)}")
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
        if len(errors) == 1:  # an optional value: the one type's own message (a bound, a choice) says more
            raise ConfigError(errors[0])
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
    if tp is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value) and math.isfinite(float(value)):
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
    """Split ``"optim.lr=0.01"`` into ``(["optim", "lr"], 0.01)``; the value is read as YAML.

    A value YAML cannot read is kept as its text: ``data.root={shared}/x`` is a path, not a broken flow mapping
    (the field's type still checks it).
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _mapping_key_kept_whole(path: list[str]) -> list[str]:
    """``path`` with everything after a mapping field joined into that mapping's one key.

    The keys of ``sweep.grid`` are dotted config keys: ``sweep.grid.model.weights=[...]`` sets the grid's key
    ``model.weights``, not a section ``model`` holding ``weights``.
    """
    section: type = RunConfig  # every step below is a dataclass section
    for depth, part in enumerate(path[:-1]):
        tp = _field_types(section).get(part)
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            section = tp
            continue
        if get_origin(tp) is dict:
            return [*path[: depth + 1], ".".join(path[depth + 1 :])]
        break
    return path


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of nested ``values`` with each ``key.sub=value`` override set."""
    merged = yaml.safe_load(yaml.safe_dump(values))
    for text in overrides:
        path, value = parse_override(text)
        path = _mapping_key_kept_whole(path)
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
        names = list(list_recipes())
        close = difflib.get_close_matches(name_or_path, names, n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "`marsvision recipes` lists them"
        raise ConfigError(f"unknown recipe {name_or_path!r}; {hint} (or give a path to a .yaml file)")
    return bundled


def recipe_chain(name_or_path: str) -> list[str]:
    """The recipe and the recipes it builds on through ``base:``, itself first."""
    chain = [name_or_path]
    values = yaml.safe_load(recipe_path(name_or_path).read_text()) or {}
    while isinstance(values, dict) and values.get("base"):
        chain.append(str(values["base"]))
        values = yaml.safe_load(recipe_path(chain[-1]).read_text()) or {}
    return chain


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
