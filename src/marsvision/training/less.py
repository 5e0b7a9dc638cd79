"""LESS: ``seg-less-within`` and ``seg-less-cross``, Table 8's "LESS Within-image" and "Cross-image" (paper 002).

Zhao et al. 2021, "Contrastive Learning for Label Efficient Semantic Segmentation".

Zhao et al. pretrain the segmentation network with a pixel-wise, label-based contrastive loss and then
fine-tune it with the cross-entropy; unlabeled images take part through pseudo labels that, as paper 002 notes,
are fixed once generated. Three stages in one run (``less.stage_epochs``), the learning-rate schedule
restarting at each:

1. **labeler**: a separate copy of the network (same architecture and initialisation) trains with the
   cross-entropy on the labeled images; it then stays frozen and labels the unlabeled images (arg-max of its
   eval-mode prediction; padding unlabeled), so their labels never change afterwards;
2. **contrastive**: the network proper — encoder, DeepLabv3+ decoder and a projection head
   (:class:`~marsvision.models.pixel_projection.PixelProjectionHead`) on the decoder's output, resized to
   ``less.resize``² — trains with the pixel contrastive loss (:mod:`marsvision.losses.pixel_contrastive`) on the
   labeled images (ground truth) and the unlabeled ones (pseudo labels), each also seen in a photometrically
   distorted view (:class:`~marsvision.training.photometric.StrongPhotometric`, settings ``consistency.*``):
   within-image, the loss of the original views plus that of the distorted ones; cross-image, each original
   view paired with the distorted view of another image of the batch (a random permutation);
3. **fine-tune**: the network trains with the cross-entropy on the labeled images.

Our reading where the sources are silent (paper 002 gives no LESS settings; only Zhao et al.'s abstract and
their public loss code were available): the pseudo-labeler is trained on the labeled images of the run; the
contrastive stage starts from the run's initialisation, not from the labeler; fine-tuning uses the labeled
images only; distortions are photometric, so both views share the labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.data.classes import IGNORE_INDEX
from marsvision.data.labels import downsample_labels
from marsvision.losses.pixel_contrastive import cross_image_pixel_contrastive_loss, within_image_pixel_contrastive_loss
from marsvision.models.deeplabv3plus import DualHeadDeepLabV3Plus
from marsvision.models.pixel_projection import PixelProjectionHead
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream
from marsvision.training.factory import build_segmentation_model
from marsvision.training.photometric import StrongPhotometric
from marsvision.training.reproducibility import step_generator
from marsvision.training.schedules import restarted_per_stage, stage_at
from marsvision.training.segmentation import SegmentationModule

STAGES = ("labeler", "contrastive", "finetune")


class LESSSegmentation(SegmentationModule):
    """The three stages of the module docstring; subclasses choose the within- or cross-image loss."""

    streams: ClassVar[tuple[Stream, ...]] = ("labeled", "unlabeled")
    within_image: ClassVar[bool] = True
    find_unused_parameters = True  # each stage trains one part: the labeler, the projection, or neither

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        if config.model.head != "deeplabv3plus":
            raise ValueError(f"LESS is built on DeepLabv3+ (model.head=deeplabv3plus), got {config.model.head!r}")
        if len(config.less.stage_epochs) != len(STAGES) or sum(config.less.stage_epochs) < 1:
            raise ValueError(f"less.stage_epochs must be three epoch counts, got {config.less.stage_epochs}")
        super().__init__(config, classes)
        cfg, strong = config.less, config.consistency
        self.labeler = build_segmentation_model(config, self.num_classes)
        decoder_channels = cast(DualHeadDeepLabV3Plus, self.model).seg_head.in_channels
        self.projection = PixelProjectionHead(decoder_channels, cfg.projection_channels, cfg.projection_layers)
        self.distortion = StrongPhotometric(
            jitter_probability=strong.jitter_probability,
            jitter=strong.jitter,
            grayscale_probability=strong.grayscale_probability,
            blur_probability=strong.blur_probability,
        )

    def backbone_modules(self) -> list[nn.Module]:
        return [cast(nn.Module, self.model.encoder), cast(nn.Module, self.labeler.encoder)]

    def total_epochs(self) -> int | None:
        return sum(self.config.less.stage_epochs)

    def stage_of_epoch(self, epoch: int) -> str:
        return stage_at(epoch, self.config.less.stage_epochs, STAGES)

    def lr_schedule(self, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
        return restarted_per_stage(self.config.optim, steps_per_epoch, self.config.less.stage_epochs)

    def projected(self, images: Tensor) -> Tensor:
        """Unit pixel projections (N, r², D) of the decoder's output resized to r × r, r = ``less.resize``."""
        model = cast(DualHeadDeepLabV3Plus, self.model)
        decoded = model.seg_decoder(model.encode(images))  # (N, 256, H/4, W/4)
        side = self.config.less.resize
        resized = F.interpolate(decoded, size=(side, side), mode="bilinear", align_corners=True)
        return self.projection(resized).flatten(2).transpose(1, 2)

    @torch.no_grad()
    def pseudo_labels(self, images: Tensor, valid: Tensor) -> Tensor:
        """The frozen labeler's eval-mode arg-max (M, H, W); padding gets no label."""
        self.labeler.eval()
        predicted = self.labeler(images)["logits"].argmax(dim=1)
        return torch.where(valid, predicted, torch.full_like(predicted, IGNORE_INDEX))

    def contrastive_loss(self, images: Tensor, labels: Tensor) -> Tensor:
        """The within- or cross-image pixel contrastive loss of a batch and its distorted view."""
        generator = step_generator(self.config.seed, self.global_step, self.global_rank)
        distorted = self.distortion(images, generator)
        features = self.projected(torch.cat([images, distorted]))  # one BatchNorm batch for both views
        original, augmented = features.split(len(images))
        side = self.config.less.resize
        small = downsample_labels(labels, (side, side)).flatten(1)  # (N, r²)
        temperature = self.config.less.temperature
        if self.within_image:
            return within_image_pixel_contrastive_loss(
                original, small, temperature
            ) + within_image_pixel_contrastive_loss(augmented, small, temperature)
        partner = torch.randperm(len(images), generator=generator).to(images.device)
        return cross_image_pixel_contrastive_loss(original, augmented[partner], small, small[partner], temperature)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        images, labels = batch["labeled"]["image"], batch["labeled"]["label"]
        stage = self.stage_of_epoch(self.current_epoch)
        parts: dict[str, Tensor] = {}
        if stage == "labeler":
            parts["ce"] = F.cross_entropy(self.labeler(images)["logits"], labels, ignore_index=IGNORE_INDEX)
            parts["loss"] = parts["ce"]
        elif stage == "contrastive":
            unlabeled = batch["unlabeled"]
            pseudo = self.pseudo_labels(unlabeled["image"], unlabeled["valid"])
            parts["contrastive"] = self.contrastive_loss(
                torch.cat([images, unlabeled["image"]]), torch.cat([labels, pseudo])
            )
            parts["loss"] = parts["contrastive"]
        else:
            parts["ce"] = F.cross_entropy(self(images), labels, ignore_index=IGNORE_INDEX)
            parts["loss"] = parts["ce"]
        return self.log_loss_parts(parts, batch_size=len(images))


class LESSWithinImage(LESSSegmentation):
    """LESS with the within-image pixel contrastive loss (``seg-less-within``)."""

    within_image: ClassVar[bool] = True


class LESSCrossImage(LESSSegmentation):
    """LESS with the cross-image pixel contrastive loss (``seg-less-cross``)."""

    within_image: ClassVar[bool] = False
