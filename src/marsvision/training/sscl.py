"""SsCL, Table 3's "SsCL [55]" of paper 002: ``method: cls-sscl``.

Zhang, Zhang, Qiu, Li, Xu, Tian, "Semi-supervised Contrastive Learning with Similarity Co-calibration", IEEE TMM
2022 (arXiv 2105.07387). The cross-entropy branch is B + H_cls, the contrastive branch B + H_u (L2-normalised),
both trained end to end, and each branch's output on unlabeled images steers the other (``losses/sscl.py``):

    L = L_ce + w_pl · L_pl + w_nn · L_nn

* L_ce: cross-entropy on the labeled batch;
* the memory: this step's keys (the H_u embedding, without gradient, of each labeled image and of each
  unlabeled image's weak view) followed by a FIFO queue of earlier steps' keys (``losses/key_queue.py``); each
  entry carries its class distribution, the one-hot label or the calibrated prediction;
* co-calibration: the prediction p on the weak view (training-mode network, no gradient) is reweighted by the
  class distribution of the weak key's similarity to the labeled keys of the memory, giving p̂;
* L_pl: cross-entropy of the strong view against arg-max p̂ where max p̂ ≥ τ_c (mean over the unlabeled batch);
* L_nn: the strong view's H_u embedding against every memory key, its positives its own weak key and, when
  confident, its nearest memory entries in the classifier's output space.

w_pl = ``clsbaseline.sscl_pseudo_weight``, w_nn = ``clsbaseline.sscl_contrastive_weight``, τ_c =
``clsbaseline.sscl_threshold``; τ, the neighbour count and the queue size are the other ``sscl_*`` keys.
SsCL's own values and its memory, view and weighting details were not readable here (its abstract was): these
are our choices, listed in RECIPES.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from marsvision.losses.confident_cross_entropy import confident_cross_entropy
from marsvision.losses.key_queue import KeyQueue
from marsvision.losses.sscl import NeighbourContrastiveLoss, co_calibrate, neighbour_positives, similarity_distribution
from marsvision.training.classification import CrossEntropyClassification
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream


class SsCLClassification(CrossEntropyClassification):
    """Cross-entropy and contrastive branches co-calibrated on unlabeled images (see the module docstring)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled-weak-strong")
    loss_weights: ClassVar[dict[str, str]] = {
        "pseudo": "clsbaseline.sscl_pseudo_weight",
        "contrastive": "clsbaseline.sscl_contrastive_weight",
    }

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        cfg = config.clsbaseline
        self.queue = KeyQueue(cfg.sscl_queue_size, config.model.projection_dim, self.num_classes)
        self.contrastive_loss = NeighbourContrastiveLoss(cfg.sscl_temperature)

    def key(self, features: Tensor) -> Tensor:
        """The contrastive branch's embedding of pooled backbone features: (N, F) → (N, P), L2-normalised."""
        return F.normalize(self.model.unsupervised_head(features), dim=1)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        cfg = self.config.clsbaseline
        images, targets = batch["labeled"]["image"], batch["labeled"]["label"]
        weak, strong = batch["unlabeled-weak-strong"]["views"][:2]  # (M, C, H, W) each
        labeled = self.model(images)
        with torch.no_grad():
            unlabeled = self.model(weak)
            weak_keys = self.key(unlabeled["features"]).float()  # (M, P)
            labeled_keys = self.key(labeled["features"]).float()  # (N, P)
            labels = F.one_hot(targets, self.num_classes).float()  # (N, K)
            held = self.queue.entries()
            known_keys = torch.cat([labeled_keys, held.keys[held.labeled]])
            known = torch.cat([labels, held.distributions[held.labeled]])
            similarity = similarity_distribution(weak_keys, known_keys, known, cfg.sscl_temperature)
            calibrated = co_calibrate(unlabeled["logits"].float().softmax(dim=1), similarity)  # (M, K)
            confidence, pseudo = calibrated.max(dim=1)
            memory_keys = torch.cat([weak_keys, labeled_keys, held.keys])  # the own keys first
            memory = torch.cat([calibrated, labels, held.distributions])
            own = torch.arange(len(weak), device=weak.device)
            confident = confidence >= cfg.sscl_threshold
            positives = neighbour_positives(calibrated, memory, own, cfg.sscl_neighbours, confident)
        outputs = self.model(strong)
        parts = {
            "ce": F.cross_entropy(labeled["logits"], targets),
            "pseudo": confident_cross_entropy(outputs["logits"], pseudo, confidence, cfg.sscl_threshold),
            "contrastive": self.contrastive_loss(self.key(outputs["features"]), memory_keys, positives),
            "confident_fraction": confident.float().mean(),
        }
        flags = torch.cat([torch.zeros_like(confident), torch.ones_like(targets, dtype=torch.bool)])
        self.queue.push(torch.cat([weak_keys, labeled_keys]), torch.cat([calibrated, labels]), flags)
        parts["loss"] = self.weighted_total(parts)
        return self.log_loss_parts(parts, batch_size=len(images))
