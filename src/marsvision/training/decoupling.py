"""Decoupling (Kang et al. 2020, "Decoupling Representation and Classifier for Long-Tailed Recognition").

Two Table 3 baselines of paper 002 ("Decoupling, cRT" and "Decoupling, LWS"), each a two-stage schedule inside
one run (``clsbaseline.decoupling_stage_epochs``):

1. **representation**: backbone B and H_cls trained jointly with the cross-entropy on instance-balanced batches
   (the labeled stream), exactly as ``cls-ce``, under the config's learning-rate schedule;
2. **classifier**: B frozen (no gradient, BatchNorm in eval mode: the representation stays as stage 1 left
   it), only the classifier trained with the cross-entropy on class-balanced batches (the ``labeled-balanced``
   stream: every class, equally often), its learning rate restarting at ``optim.lr`` and decaying to 0 along a
   cosine, as Kang et al.'s re-training; its optimiser state starts afresh.

* ``cls-crt`` (classifier re-training): H_cls is re-initialised at the start of stage 2 and trained again;
* ``cls-lws`` (learnable weight scaling): H_cls keeps its weights W, b; stage 2 learns per-class scales f
  (initially 1) of its logits, z_j = f_j (w_jᵀx + b_j) (:class:`~marsvision.models.classifier_heads.ScaledLinear`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.models.classifier_heads import ScaledLinear
from marsvision.training.classification import CrossEntropyClassification
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.reproducibility import step_generator
from marsvision.training.schedules import cosine_factor, lr_multiplier, stage_at

STAGES = ("representation", "classifier")


def reset_linear(linear: nn.Linear, generator: torch.Generator) -> None:
    """Re-draw a linear layer's weights as ``nn.Linear`` initialises them, from ``generator`` (replayable)."""
    with torch.no_grad():
        nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
        if linear.bias is not None:
            bound = 1.0 / math.sqrt(linear.in_features)
            nn.init.uniform_(linear.bias, -bound, bound, generator=generator)


class DecouplingClassification(CrossEntropyClassification):
    """The two stages of the module docstring; subclasses say what stage 2 trains (:meth:`retrained_logits`)."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "labeled-balanced")

    stage_epochs_key: ClassVar[str] = "decoupling_stage_epochs"
    """The ``clsbaseline`` key that holds the two stages' epochs."""

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        stages = getattr(config.clsbaseline, self.stage_epochs_key)
        if len(stages) != len(STAGES) or min(stages) < 0 or sum(stages) < 1:
            raise ValueError(f"clsbaseline.{self.stage_epochs_key} must be two epoch counts ≥ 0, got {stages}")
        super().__init__(config, classes)

    @property
    def stage_epochs(self) -> list[int]:
        """Epochs of stage 1 and stage 2."""
        epochs: list[int] = getattr(self.config.clsbaseline, self.stage_epochs_key)
        return epochs

    @property
    def representation_epochs(self) -> int:
        """Epochs of stage 1."""
        return self.stage_epochs[0]

    def total_epochs(self) -> int | None:
        return sum(self.stage_epochs)

    def stage_of_epoch(self, epoch: int) -> str:
        return stage_at(epoch, self.stage_epochs, STAGES)

    def lr_schedule(self, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
        """Stage 1: the config's schedule over stage 1; stage 2: a cosine from 1 to 0 over stage 2 (Kang et al.)."""
        boundary = self.representation_epochs * steps_per_epoch
        representation = lr_multiplier(self.config.optim, steps_per_epoch, boundary)
        retraining_steps = max(total_steps - boundary, 1)

        def multiplier(step: int) -> float:
            return representation(step) if step < boundary else cosine_factor(step - boundary, retraining_steps)

        return multiplier

    def stage_two_parameters(self) -> list[nn.Parameter]:
        """The parameters stage 2 trains."""
        raise NotImplementedError

    def retrained_logits(self, features: Tensor) -> Tensor:
        """Stage 2's logits (N, K) from frozen features (N, F), with gradients for :meth:`stage_two_parameters`."""
        raise NotImplementedError

    def start_retraining(self) -> None:
        """Hook run once, at the first epoch of stage 2, before its optimiser state is cleared."""

    def on_train_epoch_start(self) -> None:
        if self.current_epoch != self.representation_epochs:
            return
        self.start_retraining()
        optimizer = self.optimizers()
        optimizer = getattr(optimizer, "optimizer", optimizer)
        for parameter in self.stage_two_parameters():
            optimizer.state.pop(parameter, None)  # type: ignore[union-attr]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        if self.stage_of_epoch(self.current_epoch) == STAGES[0]:
            return super().training_step(batch, batch_idx)
        balanced = batch["labeled-balanced"]
        self.model.encoder.eval()  # the representation is fixed: no BatchNorm statistics either
        with torch.no_grad():
            features = self.model.encoder(balanced["image"])  # (N, F)
        parts = {"ce": F.cross_entropy(self.retrained_logits(features), balanced["label"])}
        parts["loss"] = parts["ce"]
        return self.log_loss_parts(parts, batch_size=len(features))


class ClassifierRetraining(DecouplingClassification):
    """cRT: H_cls re-initialised and re-trained on class-balanced batches over the frozen backbone (``cls-crt``)."""

    def stage_two_parameters(self) -> list[nn.Parameter]:
        return list(self.model.classifier.parameters())

    def start_retraining(self) -> None:
        classifier = self.model.classifier
        if not isinstance(classifier, nn.Linear):
            raise TypeError(f"cRT re-initialises a linear H_cls, got {type(classifier).__name__}")
        # every rank draws the same weights (rank 0's generator), so DDP replicas stay identical
        reset_linear(classifier, step_generator(self.config.seed, self.global_step, 0))

    def retrained_logits(self, features: Tensor) -> Tensor:
        logits: Tensor = self.model.classifier(features)
        return logits


class LearnableWeightScaling(DecouplingClassification):
    """LWS: per-class scales of H_cls's logits learned on class-balanced batches, W and b kept (``cls-lws``)."""

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.model.classifier = ScaledLinear(self.model.classifier)

    @property
    def scaled(self) -> ScaledLinear:
        """H_cls with its scales."""
        classifier = self.model.classifier
        assert isinstance(classifier, ScaledLinear)
        return classifier

    def stage_two_parameters(self) -> list[nn.Parameter]:
        return [self.scaled.scales]

    def supervised_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        # stage 1 trains W and b alone: the scales (still 1) stay out of its gradient
        features = self.model.dropout(self.model.encoder(images))
        return F.cross_entropy(self.scaled.linear(features), targets)

    def retrained_logits(self, features: Tensor) -> Tensor:
        return self.scaled.linear(features).detach() * self.scaled.scales
