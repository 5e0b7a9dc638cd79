"""CCT, cross-consistency training: ``method: seg-cct``, a Table 8 baseline of paper 002.

Ouali et al. 2020, "Semi-Supervised Semantic Segmentation with Cross-Consistency Training".

The shared encoder's output z on an unlabeled image goes, clean, through the main decoder g and, perturbed,
through K auxiliary decoders g_a^k; each auxiliary decoder learns to agree with the main one::

    L = L_ce + w_u(t) · 1/K Σ_k d( g_a^k(p_k(z)), g(z) ),      d = mean squared error of the softmax outputs

with g(z) a fixed target (detached), so the auxiliary decoders train on unlabeled images only and the
encoder learns from their disagreement, and w_u(t) ramped up along exp(−5 (1 − t)²) over the first
``cct.rampup`` of the epochs to ``cct.unsupervised_weight``.

Here g is paper 002's DeepLabv3+ decoder (H_seg), z the encoder's last feature map (stride 16 or 8), and each
g_a^k CCT's own light decoder (:class:`~marsvision.models.pixel_shuffle_decoder.PixelShuffleDecoder`) from z to
the input size. The perturbations p_k, CCT's non-guided ones:

* ``dropout``: spatial dropout of whole channels (rate ``dropout_rate``);
* ``feature-drop``: the channel-mean activation is thresholded at γ × its maximum, γ ~ U(0.6, 0.9), and the
  most active region above it is zeroed;
* ``feature-noise``: z ← z + z ⊙ N, N ~ U(−r, r) of shape (C, h, w), shared by the batch;
* ``vat``: z ← z + r_adv, r_adv the direction (one power iteration, step ξ) in which the auxiliary decoder's
  prediction changes most in KL divergence, scaled to norm ε per image.

CCT's guided perturbations (cutout, context masking, object masking) cut objects out of the main decoder's
predicted background (class 0 of PASCAL VOC); AI4Mars' terrain classes have no background class, so they are
left out. Draws come from (seed, step, rank) generators or the per-step reseeded global RNG (dropout), so a
resumed run replays them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.softmax_mse import softmax_mse_loss
from marsvision.models.deeplabv3plus import DualHeadDeepLabV3Plus
from marsvision.models.encoders import Encoder
from marsvision.models.pixel_shuffle_decoder import PixelShuffleDecoder
from marsvision.training.config import CCTConfig, RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.reproducibility import step_generator
from marsvision.training.seg_baselines import sigmoid_rampup
from marsvision.training.segmentation import SegmentationModule

Perturbation = Literal["vat", "dropout", "feature-drop", "feature-noise"]

FEATURE_DROP_RANGE = (0.6, 0.9)
"""γ of the feature drop is drawn from this range (CCT's ``FeatureDropDecoder``)."""


def feature_drop(z: Tensor, generator: torch.Generator) -> Tensor:
    """Zero the locations whose channel-mean activation reaches γ × the image's maximum, γ ~ U(0.6, 0.9)."""
    attention = z.mean(dim=1, keepdim=True)  # (N, 1, h, w)
    low, high = FEATURE_DROP_RANGE
    gamma = low + (high - low) * float(torch.rand(1, generator=generator))
    threshold = attention.flatten(1).amax(dim=1).view(-1, 1, 1, 1) * gamma
    return z * (attention < threshold).to(z.dtype)


def feature_noise(z: Tensor, noise_range: float, generator: torch.Generator) -> Tensor:
    """Return z + z ⊙ N with N ~ U(−noise_range, noise_range), one draw of shape (C, h, w) for the whole batch."""
    noise = (torch.rand(z.shape[1:], generator=generator) * 2 - 1) * noise_range
    return z + z * noise.to(z.device, z.dtype).unsqueeze(0)


def _unit_per_image(d: Tensor) -> Tensor:
    """Return d / ‖d‖ per image, after dividing d by its largest entry (as Miyato et al.'s VAT code does).

    The first division keeps the direction of the tiny gradients that ξ = 1e-6 gives, which would otherwise
    vanish next to the norm's epsilon.
    """
    shape = (-1, *([1] * (d.dim() - 1)))
    d = d / (d.flatten(1).abs().amax(dim=1).view(shape) + 1e-12)
    return d / (d.flatten(1).norm(dim=1).view(shape) + 1e-6)


def vat_perturbation(z: Tensor, decoder: nn.Module, xi: float, eps: float, generator: torch.Generator) -> Tensor:
    """r_adv of virtual adversarial training (Miyato et al. 2018) on the features, one power iteration.

    d ~ U(−½, ½) normalised per image; r_adv = ε · ∇_d KL(softmax g(z) ‖ softmax g(z + ξ d)) normalised per image.
    Computed in float32 outside autocast (ξ = 1e-6 is below bfloat16's resolution); the decoder's parameters get
    no gradient from it.
    """
    clean = z.detach().float()
    with torch.autocast(device_type=z.device.type, enabled=False):
        with torch.no_grad():
            target = decoder(clean).softmax(dim=1)
        d = _unit_per_image(torch.rand(z.shape, generator=generator).to(z.device) - 0.5).requires_grad_()
        distance = F.kl_div(decoder(clean + xi * d).log_softmax(dim=1), target, reduction="batchmean")
        (gradient,) = torch.autograd.grad(distance, d)
    return (eps * _unit_per_image(gradient)).to(z.dtype)


PERTURBATIONS: dict[Perturbation, Callable[[Tensor, CCTConfig, nn.Module, torch.Generator], Tensor]] = {
    "vat": lambda z, cfg, decoder, generator: z + vat_perturbation(z, decoder, cfg.vat_xi, cfg.vat_eps, generator),
    "dropout": lambda z, cfg, decoder, generator: F.dropout2d(z, cfg.dropout_rate, training=True),
    "feature-drop": lambda z, cfg, decoder, generator: feature_drop(z, generator),
    "feature-noise": lambda z, cfg, decoder, generator: feature_noise(z, cfg.noise_range, generator),
}
"""Each perturbation p_k of z (M, C, h, w), in the order of the ``cct.*_decoders`` counts (VAT's direction
depends on the auxiliary decoder it perturbs for)."""


class CrossConsistencySegmentation(SegmentationModule):
    """DeepLabv3+ + auxiliary decoders on perturbed encoder features of unlabeled images (module docstring)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    loss_weights: ClassVar[dict[str, str]] = {"consistency": "cct.unsupervised_weight"}

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        cfg = config.cct
        if config.model.head != "deeplabv3plus":
            raise ValueError(f"seg-cct is built on DeepLabv3+ (model.head=deeplabv3plus), got {config.model.head!r}")
        counts = (cfg.vat_decoders, cfg.dropout_decoders, cfg.feature_drop_decoders, cfg.feature_noise_decoders)
        if min(counts) < 0 or sum(counts) < 1:
            raise ValueError("cct: decoder counts must be ≥ 0 and give at least one auxiliary decoder")
        if not 0.0 <= cfg.dropout_rate < 1.0 or cfg.noise_range < 0 or cfg.rampup < 0 or cfg.unsupervised_weight < 0:
            raise ValueError("cct: dropout_rate in [0, 1); noise_range, rampup and unsupervised_weight ≥ 0")
        super().__init__(config, classes)
        model = cast(DualHeadDeepLabV3Plus, self.model)
        self.perturbations = [kind for kind, count in zip(PERTURBATIONS, counts, strict=True) for _ in range(count)]
        channels = cast(Encoder, model.encoder).pyramid_channels[-1]
        self.auxiliary_decoders = nn.ModuleList(
            PixelShuffleDecoder(channels, self.num_classes, model.encoder_output_stride) for _ in self.perturbations
        )

    def consistency_ramp(self) -> float:
        """w_u(t) / w_u: CCT's sigmoid ramp-up over int(rampup × epochs) epochs (1 once past, or without one)."""
        steps_per_epoch = max(int(self.trainer.num_training_batches), 1)
        rampup_epochs = int(self.config.cct.rampup * (self.trainer.max_epochs or 0))
        return sigmoid_rampup(self.global_step, rampup_epochs * steps_per_epoch)

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The step's loss (``"loss"``) and its parts from the labeled and unlabeled streams of ``batch``."""
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        unlabeled, valid = batch["unlabeled"]["image"], batch["unlabeled"]["valid"]
        n, m = len(images), len(unlabeled)
        size = (int(images.shape[-2]), int(images.shape[-1]))
        model = cast(DualHeadDeepLabV3Plus, self.model)
        features = model.encode(torch.cat([images, unlabeled]))  # one BatchNorm batch for both streams
        labeled_logits, unlabeled_logits = model.decode(features, size).split([n, m])
        target = unlabeled_logits.detach().float().softmax(dim=1)  # (M, K, H, W), g(z) fixed
        z = features[-1][n:]  # (M, C, H/s, W/s)
        generator = step_generator(self.config.seed, self.global_step, self.global_rank)
        terms = []
        for kind, decoder in zip(self.perturbations, self.auxiliary_decoders, strict=True):
            logits = decoder(PERTURBATIONS[kind](z, self.config.cct, decoder, generator))
            if logits.shape[-2:] != size:
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
            terms.append(softmax_mse_loss(logits, target, valid))
        parts = {
            "ce": F.cross_entropy(labeled_logits, labels, ignore_index=IGNORE_INDEX),
            "consistency": torch.stack(terms).mean(),
        }
        parts["loss"] = parts["ce"] + self.consistency_ramp() * self.weight("consistency") * parts["consistency"]
        return parts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.log_loss_parts(self.compute_losses(batch), batch_size=len(batch["labeled"]["image"]))
