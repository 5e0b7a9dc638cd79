"""UniMatch for segmentation: ``method: seg-unimatch``, a method beyond the two papers.

Yang et al., "Revisiting Weak-to-Strong Consistency in Semi-Supervised Semantic Segmentation", CVPR 2023.

Each step takes a labeled batch and an unlabeled batch of weakly augmented images x_w (the training crop and
flip). The model's own prediction on x_w, where its confidence reaches τ, is the pseudo label of three views:

* two strong views x_s1, x_s2 of the same geometry: per-image colour jitter, grayscale and blur
  (:mod:`marsvision.training.photometric`), and with probability ½ a CutMix box pasted from another unlabeled
  image together with that image's pseudo labels;
* the weak view decoded from its encoder features after channel dropout (feature perturbation).

    L = L_x + w_s · ½ (L_s1 + L_s2) + w_fp · L_fp

with L_x the cross-entropy on labeled pixels and every unlabeled term :func:`confident_cross_entropy` (sum over
confident pixels, mean over the image's own pixels: padding from the crop never gets a pseudo label). UniMatch
weighs the terms ½ L_x + ¼ L_s1 + ¼ L_s2 + ½ L_fp, the same ratios as w_s = w_fp = 1 here. The labeled and
weak images go through the encoder together (one BatchNorm batch), the strong views in a second pass; the
pseudo labels are detached predictions of that training-mode pass, as in UniMatch. Unlike UniMatch, the
perturbed passes (strong views, dropped-out features) leave BatchNorm's running statistics alone
(:mod:`marsvision.training.batchnorm`): evaluation normalises with the statistics of clean images. Draws (which
images are mixed, the boxes, the photometric parameters) are a function of (seed, step, rank), so a resumed run
replays them.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from marsvision.data.classes import IGNORE_INDEX
from marsvision.losses.confident_cross_entropy import confident_cross_entropy
from marsvision.models.segmenter import Segmenter
from marsvision.training.batchnorm import running_statistics_frozen
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.photometric import StrongPhotometric
from marsvision.training.reproducibility import step_generator
from marsvision.training.seg_augment import cutmix_box_mask, mix
from marsvision.training.segmentation import SegmentationModule


class UniMatchSegmentation(SegmentationModule):
    """Weak-to-strong consistency with dual strong views and feature perturbation (see the module docstring)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    loss_weights: ClassVar[dict[str, str]] = {
        "strong": "consistency.strong_weight",
        "feature_perturbation": "consistency.feature_perturbation_weight",
    }

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        cfg = config.consistency
        if not 0.0 <= cfg.threshold <= 1.0 or cfg.strong_views < 1 or not 0.0 <= cfg.feature_dropout < 1.0:
            raise ValueError("consistency: threshold in [0, 1], strong_views ≥ 1 and feature_dropout in [0, 1)")
        super().__init__(config, classes)
        self.photometric = StrongPhotometric(
            jitter_probability=cfg.jitter_probability,
            jitter=cfg.jitter,
            grayscale_probability=cfg.grayscale_probability,
            blur_probability=cfg.blur_probability,
        )

    def strong_view(
        self, weak: Tensor, pseudo: Tensor, confidence: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One strong view of the weak batch (M, C, H, W) and its pseudo labels and confidences (M, H, W).

        With probability ``cutmix_probability`` an image gets a box of its neighbour in the batch (the batch
        rolled by one), pixels and pseudo labels together; then the photometric augmentation.
        """
        cfg = self.config.consistency
        m, _, height, width = weak.shape
        box = cutmix_box_mask(m, height, width, cfg.cutmix_area, generator).to(weak.device)  # (M, H, W)
        pasted = (torch.rand(m, generator=generator) < cfg.cutmix_probability).to(weak.device).view(m, 1, 1)
        from_partner = box & pasted

        def partner(x: Tensor) -> Tensor:
            return x.roll(1, dims=0)

        images = mix(partner(weak), weak, from_partner)
        return (
            self.photometric(images, generator),
            mix(partner(pseudo), pseudo, from_partner),
            mix(partner(confidence), confidence, from_partner),
        )

    def compute_losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The step's loss (``"loss"``) and its parts from the labeled and unlabeled streams of ``batch``."""
        cfg = self.config.consistency
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        weak, valid = batch["unlabeled"]["image"], batch["unlabeled"]["valid"]
        n, m = len(images), len(weak)
        size = (images.shape[-2], images.shape[-1])
        model = cast(Segmenter, self.model)
        features = model.encode(torch.cat([images, weak]))  # one BatchNorm batch, as UniMatch
        labeled_logits, weak_logits = model.decode(features, size).split([n, m])
        perturbed = [F.dropout2d(f[n:], cfg.feature_dropout, training=True) for f in features]
        with running_statistics_frozen(self.model):  # evaluation keeps the clean images' statistics
            perturbed_logits = model.decode(perturbed, size)  # (M, K, H, W)

        confidence, pseudo = weak_logits.detach().float().softmax(dim=1).max(dim=1)  # (M, H, W) each
        pseudo = torch.where(valid, pseudo, torch.full_like(pseudo, IGNORE_INDEX))  # no label for padding
        generator = step_generator(self.config.seed, self.global_step, self.global_rank)
        views = [self.strong_view(weak, pseudo, confidence, generator) for _ in range(cfg.strong_views)]
        with running_statistics_frozen(self.model):
            strong_logits = model.decode(model.encode(torch.cat([v[0] for v in views])), size).split(m)

        parts = {"ce": self.labeled_cross_entropy(labeled_logits, labels)}
        strong_losses = [
            confident_cross_entropy(logits, view_pseudo, view_confidence, cfg.threshold)
            for logits, (_, view_pseudo, view_confidence) in zip(strong_logits, views, strict=True)
        ]
        parts["strong"] = torch.stack(strong_losses).mean()
        parts["feature_perturbation"] = confident_cross_entropy(perturbed_logits, pseudo, confidence, cfg.threshold)
        parts["confident_fraction"] = ((confidence >= cfg.threshold) & valid).float().sum() / valid.sum().clamp(min=1)
        parts["loss"] = (
            parts["ce"]
            + self.weight("strong") * parts["strong"]
            + self.weight("feature_perturbation") * parts["feature_perturbation"]
        )
        return parts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.log_loss_parts(self.compute_losses(batch), batch_size=len(batch["labeled"]["image"]))
