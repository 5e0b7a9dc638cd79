"""Semi-supervised image classifier of method B-cls (paper 002, §4.4, Fig. 6).

One backbone B (any encoder under the ARCHITECTURE.md contract: ``feature_channels`` and a pooled
``forward``) shared by three heads:

* H_cls — a linear layer on B's pooled features → class logits (cross-entropy L_ce), optionally after a dropout
  layer (Table 3's Dropout baseline);
* H_s   — a 2-layer MLP (Linear → ReLU → Linear) → 128-d embedding for the inter-class loss L_s;
* H_u   — a second 2-layer MLP of the same shape → 128-d embedding for the similarity loss L_u.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from marsvision.models.heads import ProjectionHead

PAPER_HEAD_LR = 1e-3
"""Learning rate of H_cls (paper 002, §6.1)."""
PAPER_BACKBONE_LR = 1e-6
"""Learning rate of B, H_s and H_u (paper 002, §6.1)."""


class SemiSupervisedClassifier(nn.Module):
    """Backbone B + H_cls (linear) + H_s, H_u (2-layer MLPs), paper 002 §4.4.

    Shapes: images (N, C, H, W) → pooled features (N, F) with F = ``encoder.feature_channels`` → logits (N, K)
    and embeddings (N, P) with P = ``projection_dim``.

    Args:
        encoder: backbone with ``feature_channels: int`` and ``forward(x) -> (N, F)``.
        num_classes: K (24 for the MSL surface dataset in the paper).
        projection_dim: P, output of H_s and H_u (128 in the paper, §4.4).
        hidden_dim: hidden width of H_s and H_u (default F, as the SimCLR/MoCo v2 MLP heads).
        dropout: probability p of dropping a feature before H_cls in training (0 = no dropout layer).

    Raises:
        ValueError: if the encoder has no positive ``feature_channels``, a size is not positive or ``dropout``
            is outside [0, 1).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        feature_channels = getattr(encoder, "feature_channels", None)
        if not isinstance(feature_channels, int) or feature_channels < 1:
            raise ValueError("encoder must define a positive int `feature_channels` (docs/ARCHITECTURE.md)")
        hidden = feature_channels if hidden_dim is None else hidden_dim
        if min(num_classes, projection_dim, hidden) < 1:
            raise ValueError(
                f"num_classes, projection_dim and hidden_dim must be positive, got {num_classes}, "
                f"{projection_dim}, {hidden}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier: nn.Module = nn.Linear(feature_channels, num_classes)  # H_cls

        def mlp() -> ProjectionHead:
            return ProjectionHead(feature_channels, projection_dim, hidden, num_layers=2, batch_norm=False)

        self.supervised_head = mlp()  # H_s
        self.unsupervised_head = mlp()  # H_u
        self.num_classes = num_classes
        self.feature_channels = feature_channels
        self.projection_dim = projection_dim

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """(N, C, H, W) → {"logits": (N, K), "features": (N, F)} (the features before any dropout)."""
        features = self.encoder(x)  # (N, F)
        return {"logits": self.classifier(self.dropout(features)), "features": features}

    def embed_supervised(self, x: Tensor) -> Tensor:
        """Embedding z = H_s(B(x)) for the inter-class loss L_s: (N, C, H, W) → (N, P)."""
        return self.supervised_head(self.encoder(x))

    def embed_unsupervised(self, x: Tensor) -> Tensor:
        """Embedding z = H_u(B(x)) for the similarity loss L_u: (N, C, H, W) → (N, P)."""
        return self.unsupervised_head(self.encoder(x))

    def parameter_groups(
        self, head_lr: float = PAPER_HEAD_LR, backbone_lr: float = PAPER_BACKBONE_LR
    ) -> list[dict[str, Any]]:
        """Optimizer parameter groups with the paper's per-group learning rates (§6.1).

        Returns:
            ``[{"name": "classifier", "params": H_cls, "lr": head_lr},
            {"name": "backbone", "params": B + H_s + H_u, "lr": backbone_lr}]`` — every trainable parameter
            exactly once; frozen (``requires_grad=False``) parameters are left out.

        Raises:
            ValueError: if a learning rate is negative.
        """
        if head_lr < 0 or backbone_lr < 0:
            raise ValueError(f"learning rates must be non-negative, got {head_lr}, {backbone_lr}")
        slow = [
            *self.encoder.parameters(),
            *self.supervised_head.parameters(),
            *self.unsupervised_head.parameters(),
        ]
        return [
            {
                "name": "classifier",
                "params": [p for p in self.classifier.parameters() if p.requires_grad],
                "lr": head_lr,
            },
            {"name": "backbone", "params": [p for p in slow if p.requires_grad], "lr": backbone_lr},
        ]
