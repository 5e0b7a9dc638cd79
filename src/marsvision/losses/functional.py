"""Small pieces the contrastive losses share: the temperature check and the masked log-sum-exp."""

from __future__ import annotations

import torch
from torch import Tensor


def check_temperature(temperature: float) -> float:
    """Return τ, or raise ``ValueError`` if it is not positive (every contrastive loss divides by it)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return temperature


def masked_logsumexp(values: Tensor, keep: Tensor, dim: int = -1) -> Tensor:
    """Log Σ_{k: keep_k} exp(values_k) along ``dim``; −inf where nothing is kept.

    Masked entries are −inf, the one masking convention of marsvision's losses: they add exactly 0. A row with
    nothing kept is computed on zeros and set to −inf afterwards, so backward never meets exp(−inf − (−inf)) and
    gradients stay finite (zero for that row).

    Args:
        values: logits of any shape.
        keep: bool mask broadcastable to ``values``.
        dim: the dimension summed over (removed from the result).
    """
    keep = keep.expand_as(values)
    any_kept = keep.any(dim=dim, keepdim=True)
    safe = torch.where(any_kept, values.masked_fill(~keep, float("-inf")), torch.zeros_like(values))
    total = torch.logsumexp(safe, dim=dim, keepdim=True)
    return torch.where(any_kept, total, torch.full_like(total, float("-inf"))).squeeze(dim)
