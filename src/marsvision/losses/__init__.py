"""marsvision.losses: one loss per file, a pure function plus a thin module."""

from marsvision.losses.distributed import gather_with_grad
from marsvision.losses.nt_xent import NTXentLoss, nt_xent_loss

__all__ = [
    "NTXentLoss",
    "gather_with_grad",
    "nt_xent_loss",
]
