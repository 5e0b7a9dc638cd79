"""DenseCL pretraining (Wang et al., CVPR 2021): SimCLR's image-level loss plus a dense one on the encoder's map.

Image-level contrast teaches the encoder what a whole view shows; a segmenter needs each location of its last map
to say what is there. DenseCL adds a 1×1-convolution head on that map and contrasts each location of one view with
its most similar location of the other view (``losses/dense_contrastive.py``), keeping the global term:

    L = L_NT-Xent(g(pool f(x₁)), g(pool f(x₂))) + w L_dense(h(f(x₁)), h(f(x₂)); f(x₁), f(x₂))

with w = ``densecl.dense_weight``. DenseCL writes (1 − λ) L_global + λ L_dense with λ = 0.5: that is this loss
with w = λ / (1 − λ) = 1, halved, a scale Adam's steps do not see (SGD's would: half its learning rate). It
exports its encoder like SimCLR, so every fine-tuning recipe takes its weights the same way (``model.weights``).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from marsvision.losses.dense_contrastive import dense_contrastive_loss
from marsvision.models.pixel_projection import PixelProjectionHead
from marsvision.training.chunked import checkpointed_chunks_of_many
from marsvision.training.config import RunConfig
from marsvision.training.data import ClassInfo
from marsvision.training.pretrain import SimCLRModule


class DenseCLModule(SimCLRModule):
    """Encoder f, SimCLR's projection head g and a dense head h (1×1 convolutions), trained with the loss above.

    The dense head is LESS's pixel head (two 1×1 convolutions with BatchNorm between them, D wide) where DenseCL
    uses a C-wide hidden layer without BatchNorm. With several devices the global term gathers its negatives from
    all of them, the dense term takes them from the local batch.
    """

    loss_weights: ClassVar[dict[str, str]] = {"dense": "densecl.dense_weight"}
    unweighted_part: ClassVar[str] = "global"

    def __init__(self, config: RunConfig, classes: ClassInfo | None = None) -> None:
        super().__init__(config, classes)
        self.dense_head = PixelProjectionHead(
            cast(int, self.encoder.feature_channels), config.densecl.embedding_dim, num_layers=2
        )

    def embed_densely(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, C_in, H, W) → z (N, D_g), the dense embeddings (N, D, S, S) and the encoder's map (N, C, S, S)."""
        features = cast(Tensor, self.encoder.forward_features(images))  # type: ignore[operator]
        z = self.projection_head(features.mean(dim=(-2, -1)))
        return z, self.dense_head(features), features

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        view1, view2 = self.view_pair(batch)
        chunk = self.config.simclr.chunk_size
        z1, dense1, features1 = checkpointed_chunks_of_many(self, self.embed_densely, view1, chunk)
        z2, dense2, features2 = checkpointed_chunks_of_many(self, self.embed_densely, view2, chunk)
        parts = {
            "global": self.image_level_loss(z1, z2),
            "dense": dense_contrastive_loss(dense1, dense2, features1, features2, self.config.simclr.temperature),
        }
        parts["loss"] = self.weighted_total(parts)
        return self.log_loss_parts(parts, batch_size=view1.shape[0])
