"""Alternatives to the plain linear H_cls that some Table 3 baselines of paper 002 train with.

* :class:`CosineLinear` — logits are cosines between the L2-normalised feature and L2-normalised class weights
  (LDAM-DRW, Cao et al. 2019, whose public code pairs the LDAM loss with this layer and a scale s);
* :class:`ScaledLinear` — a linear layer whose logits are multiplied by learnable per-class scales f_j
  (Decoupling's LWS, Kang et al. 2020: z_j = f_j (w_jᵀx + b_j), f initialised to 1).

Both map (N, F) features to (N, K) logits, as ``nn.Linear`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CosineLinear(nn.Module):
    """z_j = x̂ · ŵ_j with x̂ = x/‖x‖ and ŵ_j = w_j/‖w_j‖ (no bias): logits in [−1, 1].

    Args:
        in_features: F.
        out_features: K.

    Raises:
        ValueError: if a size is not positive.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        if min(in_features, out_features) < 1:
            raise ValueError(f"sizes must be positive, got {in_features}, {out_features}")
        # Cao et al.'s NormedLinear draws each weight uniformly in [−1, 1]; only the directions matter.
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1.0, 1.0))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()  # (N, K)


class ScaledLinear(nn.Module):
    """z = f ⊙ (W x + b): ``linear`` (kept as it is) times learnable per-class scales ``scales`` (K,), initially 1.

    Args:
        linear: the trained classifier whose outputs are scaled.

    Raises:
        ValueError: if ``linear`` is not an ``nn.Linear``.
    """

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"ScaledLinear scales an nn.Linear, got {type(linear).__name__}")
        self.linear = linear
        self.scales = nn.Parameter(torch.ones(linear.out_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x) * self.scales  # (N, K)
