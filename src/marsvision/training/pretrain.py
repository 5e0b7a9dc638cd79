"""SimCLR / SimCLRv2 contrastive pretraining of an encoder on unlabeled images (paper 000, SPEC Method A)."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch

from marsvision.losses.nt_xent import nt_xent_loss
from marsvision.models.encoders import create_encoder
from marsvision.models.heads import ProjectionHead
from marsvision.training.chunked import checkpointed_chunks
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo, Stream, Task
from marsvision.training.lightning_base import MarsvisionModule

PRETRAINING_OUTPUT_STRIDE = 32
"""SimCLR pools the encoder's undilated last map (Chen et al. 2020); ``model.output_stride`` pretrains a denser one."""


class SimCLRModule(MarsvisionModule):
    """Encoder f + projection head g trained with NT-Xent on two views of each image.

    With ``trainer.devices > 1`` the negatives are gathered from every device (gradients flow to the local
    slice), so the effective batch for the loss is the global batch, as SimCLR's large batches require. With
    ``simclr.chunk_size`` each device embeds its views chunk by chunk under activation checkpointing, so a batch
    far larger than the activation memory of one pass trains with every view as a negative (``chunked.py``).
    """

    task: ClassVar[Task] = "pretrain"
    streams: ClassVar[tuple[Stream, ...]] = ("simclr-views",)

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.encoder = create_encoder(
            config.model.encoder,
            in_channels=config.data.channels,
            output_stride=config.model.output_stride or PRETRAINING_OUTPUT_STRIDE,
        )
        self.projection_head = ProjectionHead(
            in_dim=cast(int, self.encoder.feature_channels),
            out_dim=config.model.projection_dim,
            num_layers=config.model.projection_layers,
        )

    def backbone_modules(self) -> list[torch.nn.Module]:
        return [self.encoder]

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The embedding z = g(f(x)): (N, C, H, W) → (N, D)."""
        z: torch.Tensor = self.projection_head(self.encoder(images))
        return z

    @staticmethod
    def view_pair(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The two augmented views of the batch's images, each (N, C, H, W)."""
        view1, view2 = batch["simclr-views"]["views"][:2]
        return view1, view2

    def image_level_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """NT-Xent of the views' embeddings (N, D), with every device's views as negatives."""
        return nt_xent_loss(
            z1, z2, temperature=self.config.simclr.temperature, gather_distributed=self.trainer.world_size > 1
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        view1, view2 = self.view_pair(batch)
        chunk = self.config.simclr.chunk_size
        z1 = checkpointed_chunks(self, self.embed, view1, chunk)  # (N, D)
        z2 = checkpointed_chunks(self, self.embed, view2, chunk)
        loss = self.image_level_loss(z1, z2)
        return self.log_loss_parts({"loss": loss}, batch_size=view1.shape[0])
