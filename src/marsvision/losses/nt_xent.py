"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al., ICML 2020, eq. 1).

For N images with two views each, the 2N embeddings z (outputs of the projection head g):

    sim(u, v) = uᵀv / (‖u‖ ‖v‖)
    ℓ(i, j)   = −log( exp(sim(z_i, z_j)/τ) / Σ_{k=1..2N, k≠i} exp(sim(z_i, z_k)/τ) )
    L         = 1/(2N) Σ_{k=1..N} [ ℓ(k, k+N) + ℓ(k+N, k) ]

i.e. the mean over the 2N ordered positive pairs — lightly's ``NTXentLoss`` convention. The official TF SimCLR
code returns ``loss_a + loss_b``, the sum of the two directional means, which is exactly 2·L.

Multi-process training (``gather_distributed=True`` in a process group): each rank's local samples are the
anchors, all ranks' samples are the candidates (positives and negatives), gathered with gradients
(``marsvision.losses.distributed.gather_with_grad``). The loss on rank r is the mean over its 2n anchors; its
mean over ranks — what DDP's gradient averaging optimises — equals the single-process L on the full batch,
and so do the gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marsvision.losses.distributed import gather_with_grad, is_distributed, rank_and_world
from marsvision.losses.functional import check_temperature


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.1, gather_distributed: bool = False) -> Tensor:
    """Return the NT-Xent loss (a scalar) of two views' embeddings ``z1``, ``z2`` of shape (n, D).

    Row i of ``z1`` and row i of ``z2`` are the two views of image i; every other row of either view is a
    negative. See the module docstring for the equation and the distributed behaviour.

    Raises:
        ValueError: ``temperature ≤ 0``, inputs not 2-D, of different shapes, or empty.
    """
    check_temperature(temperature)
    if z1.ndim != 2 or z1.shape != z2.shape or z1.shape[0] == 0:
        raise ValueError(
            f"expected two non-empty (n, D) tensors of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    n = z1.shape[0]
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    rank = 0
    all1, all2 = z1, z2
    if gather_distributed and is_distributed():
        rank, _ = rank_and_world()
        all1, all2 = gather_with_grad(z1), gather_with_grad(z2)  # (N, D), N = world·n
    total = all1.shape[0]
    anchors = torch.cat([z1, z2])  # (2n, D)
    candidates = torch.cat([all1, all2])  # (2N, D): view 1 of every image, then view 2
    logits = anchors @ candidates.T / temperature  # (2n, 2N)
    local = torch.arange(n, device=z1.device) + rank * n  # global indices of the local images
    self_index = torch.cat([local, local + total])
    positive_index = torch.cat([local + total, local])
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(2 * n, device=z1.device), self_index] = True
    logits = logits.masked_fill(self_mask, float("-inf"))  # k ≠ i in the denominator
    return F.cross_entropy(logits, positive_index)


class NTXentLoss(nn.Module):
    """Module form of ``nt_xent_loss``: ``NTXentLoss(temperature)(z1, z2) -> scalar``.

    Args:
        temperature: τ (SimCLR: 0.1 for large batches, up to 0.5 for small ones).
        gather_distributed: gather negatives from all ranks (with gradients) in a process group.

    Raises:
        ValueError: ``temperature ≤ 0``.
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return nt_xent_loss(z1, z2, self.temperature, self.gather_distributed)


__all__ = ["NTXentLoss", "nt_xent_loss"]
